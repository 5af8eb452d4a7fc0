package activities

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/slipway-dev/slipway/build"
)

// checkoutDir is the folder of the checkout inside a build's workspace.
const checkoutDir = "src"

// maxDeepen bounds how far back a given commit is looked for on its ref.
const maxDeepen = 4096

// CloneInput says what to fetch into a workspace.
type CloneInput struct {
	Workspace string `json:"workspace"`
	// Namespace is the build's namespace: a source's account must belong to it.
	Namespace string       `json:"namespace"`
	Source    build.Source `json:"source"`
	Ref       build.Ref    `json:"ref"`
	// Commit, when set, must be on Ref; empty means the ref's head.
	Commit string `json:"commit,omitempty"`
	// Paths, when set, makes the clone read the files the push changed from git (Before to
	// the commit) and report in Skip when none of them is one Paths wants.
	Paths  *build.PathFilter `json:"paths,omitempty"`
	Before string            `json:"before,omitempty"`
	// Resolve, when set, makes the clone also do the resolve step's work on its checkout and
	// report it in Resolved or ResolveFailure, saving the workflow an activity. Its Workspace
	// is ignored: the clone's own is checked.
	Resolve *ResolveInput `json:"resolve,omitempty"`
}

// CloneResult reports what was checked out.
type CloneResult struct {
	Commit string `json:"commit"`
	// LogURL points at the build's log in the log store.
	LogURL string `json:"log_url"`
	// Skip, set only when the input had Paths, says why the push changed nothing the path
	// filter wants; the build then ends as skipped.
	Skip string `json:"skip,omitempty"`
	// Resolved holds the checked Dockerfile and context paths when the input asked to Resolve
	// and the build is not skipped; ResolveFailure says instead why they were refused. A
	// worker older than Resolve fills neither, and the workflow resolves in a step of its own.
	Resolved       *ResolveResult `json:"resolved,omitempty"`
	ResolveFailure *StepFailure   `json:"resolve_failure,omitempty"`
}

// Clone fetches exactly one commit of the ref, shallowly, over HTTP(S), with hooks and
// submodules off, and checks it out into the workspace.
func (a *Activities) Clone(ctx context.Context, in CloneInput) (CloneResult, error) {
	ws, err := a.workspace(in.Workspace)
	if err != nil {
		return CloneResult{}, err
	}
	// The workflow checked both; they reach a command line, so they are checked again here.
	if err := in.Ref.Check(); err != nil {
		return CloneResult{}, build.ApplicationError(err)
	}
	if err := build.CheckCommit(in.Commit); err != nil {
		return CloneResult{}, build.ApplicationError(err)
	}
	// Before reaches a command line too: a SHA-1 or SHA-256 object name, nothing else.
	if in.Before != "" && !beforePattern.MatchString(in.Before) {
		return CloneResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("before %q is not a commit hash", in.Before), build.ErrTypeInvalidInput, nil)
	}
	if err := in.Paths.Check(); err != nil {
		return CloneResult{}, temporal.NewNonRetryableApplicationError(err.Error(), build.ErrTypeInvalidInput, nil)
	}
	remote, err := a.cloneURL(in.Source)
	if err != nil {
		return CloneResult{}, err
	}
	auth, err := a.gitAuth(ctx, in.Namespace, in.Source, remote)
	if err != nil {
		return CloneResult{}, err
	}
	log, err := a.openLog(ctx)
	if err != nil {
		return CloneResult{}, err
	}
	defer log.Close()
	stop := heartbeatEvery(ctx, 5*time.Second)
	defer stop()

	fmt.Fprintf(log, "==> clone %s %s\n", remote, in.Ref.FullName())
	dir := filepath.Join(ws, checkoutDir)
	// A retried clone starts from nothing: a half-written checkout is not worth trusting.
	// (A link to a cached checkout is removed, not what it points at.)
	if err := os.RemoveAll(dir); err != nil {
		return CloneResult{}, fmt.Errorf("clearing workspace: %w", err)
	}
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return CloneResult{}, fmt.Errorf("creating workspace: %w", err)
	}
	start := time.Now()
	var got cloned
	if a.Sources != nil {
		got, err = a.cloneFromMirror(ctx, log, ws, remote, in, auth)
	} else {
		got, err = cloneFresh(ctx, log, dir, remote, in, auth)
	}
	if err != nil {
		return CloneResult{}, err
	}
	commit := got.commit
	fmt.Fprintf(log, "==> checked out %s in %s\n", commit, time.Since(start).Round(time.Millisecond))
	if _, err := os.Lstat(filepath.Join(dir, ".gitmodules")); err == nil {
		fmt.Fprintln(log, "==> .gitmodules found: submodules are not fetched (and no hook runs), so their folders stay empty")
	}
	res := CloneResult{Commit: commit, LogURL: a.logURL(ctx)}
	if in.Paths != nil {
		fmt.Fprintf(log, "==> %d files changed since %s\n", len(got.changed), got.base)
		ok, why := in.Paths.Selects(got.changed)
		if !ok {
			res.Skip = fmt.Sprintf("files changed since %s: %s", got.base, why)
			fmt.Fprintf(log, "==> %s: nothing to build\n", res.Skip)
		} else {
			fmt.Fprintf(log, "==> %s\n", why)
		}
	}
	if in.Resolve != nil && res.Skip == "" {
		if err := a.resolveAfterClone(ctx, in, &res); err != nil {
			return CloneResult{}, err
		}
	}
	return res, nil
}

// cloneFresh fetches the commit into an empty repository at dir and checks it out, as every
// clone did before the git cache: the worker keeps nothing of it after the build.
func cloneFresh(ctx context.Context, log io.Writer, dir, remote string, in CloneInput, auth []string) (cloned, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return cloned{}, fmt.Errorf("creating workspace: %w", err)
	}
	g := gitRunner{dir: dir, log: log, env: auth}
	if err := g.run(ctx, "init", "-q"); err != nil {
		return cloned{}, err
	}
	refspec := refspecOf(in.Ref)
	commit, err := g.resolveCommit(ctx, remote, in, auth != nil, refspec, localRef)
	if err != nil {
		return cloned{}, err
	}
	if err := g.run(ctx, "checkout", "-q", "--detach", commit); err != nil {
		return cloned{}, classifyCheckout(err)
	}
	out := cloned{commit: commit}
	if in.Paths != nil {
		if out.changed, out.base, err = g.changedFiles(ctx, remote, refspec, commit, in.Before); err != nil {
			return cloned{}, err
		}
	}
	return out, nil
}

// resolveCommit fetches the head of in.Ref from remote into local (refspec names both),
// shallowly, deepening the fetch until in.Commit when the input names another commit of the
// ref, and returns the commit to build. authed says whether the fetch carried the account's
// token.
func (g gitRunner) resolveCommit(ctx context.Context, remote string, in CloneInput, authed bool, refspec, local string) (string, error) {
	if err := g.run(ctx, "fetch", "--depth=1", "--no-tags", "--no-recurse-submodules", remote, refspec); err != nil {
		return "", classifyFetch(err, in, authed)
	}
	head, err := g.output(ctx, "rev-parse", local+"^{commit}")
	if err != nil {
		return "", err
	}
	if in.Commit == "" || in.Commit == head {
		return head, nil
	}
	if err := g.deepenUntil(ctx, remote, refspec, in.Commit); err != nil {
		if errors.Is(err, errNotOnRef) {
			return "", temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("commit %s is not on %s %q (head is %s)", in.Commit, in.Ref.Type, in.Ref.Name, head),
				build.ErrTypeCommitNotOnRef, nil)
		}
		return "", err
	}
	return in.Commit, nil
}

// localRef is where the checkout keeps the fetched ref.
const localRef = "refs/slipway/ref"

// refspecOf fetches ref into localRef.
func refspecOf(ref build.Ref) string { return "+" + ref.FullName() + ":" + localRef }

// cloneURL is the source's clone URL, or one built from the provider's base URL. Only http and
// https are allowed, and never with credentials in the URL: they would end up in history.
func (a *Activities) cloneURL(src build.Source) (string, error) {
	raw := src.CloneURL
	if raw != "" && src.AccountID != "" {
		// The account's token would go wherever the URL points: an account only ever reads
		// from its provider's configured host, so its URL is built here, never taken.
		return "", temporal.NewNonRetryableApplicationError(
			"source names both clone_url and account_id: a connected account is only used with the URL built from "+
				"its provider's configured host (SLIPWAY_GITHUB_URL, SLIPWAY_GITLAB_URL); drop clone_url",
			build.ErrTypeInvalidSource, nil)
	}
	if raw == "" {
		base, ok := a.CloneBaseURLs[src.Provider]
		if !ok {
			return "", temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("source provider %q is not one of github, gitlab", src.Provider), build.ErrTypeInvalidSource, nil)
		}
		if src.Owner == "" || src.Repository == "" {
			return "", temporal.NewNonRetryableApplicationError(
				"source needs an owner and a repository", build.ErrTypeInvalidSource, nil)
		}
		raw = strings.TrimSuffix(base, "/") + "/" + src.Owner + "/" + src.Repository + ".git"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("clone_url is not a URL: %v", err), build.ErrTypeInvalidSource, nil)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("clone_url scheme %q is not http or https", u.Scheme), build.ErrTypeInvalidSource, nil)
	}
	if u.User != nil {
		return "", temporal.NewNonRetryableApplicationError(
			"clone_url carries credentials; connect an account instead", build.ErrTypeInvalidSource, nil)
	}
	return u.String(), nil
}

var errNotOnRef = errors.New("commit not on ref")

// redirectAnswer is how git reports a redirect it was told not to follow.
var redirectAnswer = regexp.MustCompile(`returned error: 30[1278]\b`)

// gitAuth returns the environment that makes git send the account's token to remote, and to
// remote only: an http.<url>.extraHeader set through GIT_CONFIG_COUNT, so the token is in no
// URL, argument, input or log. The token is lent only to a build of the account's namespace, for
// a source on the account's provider, and only when remote is on that provider's configured
// scheme, host and port; redirects are not followed, since git would send the header on to the
// host a redirect names. Public sources get none.
func (a *Activities) gitAuth(ctx context.Context, ns string, src build.Source, remote string) ([]string, error) {
	if src.AccountID == "" {
		return nil, nil
	}
	if a.Accounts == nil {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("source uses account %s, but this worker cannot read accounts (is SLIPWAY_SECRET_KEY set?)", src.AccountID),
			build.ErrTypeInvalidSource, nil)
	}
	base, ok := a.CloneBaseURLs[src.Provider]
	if !ok {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("source provider %q is not one of github, gitlab", src.Provider), build.ErrTypeInvalidSource, nil)
	}
	if err := checkOrigin(remote, base); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("account %s is not used here: %v", src.AccountID, err), build.ErrTypeInvalidSource, nil)
	}
	token, err := a.Accounts.Token(ctx, build.AccountRef{ID: src.AccountID, Namespace: ns, Provider: src.Provider})
	if errors.Is(err, build.ErrUnknownAccount) {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("account %s of this source no longer exists; connect one again", src.AccountID), build.ErrTypeInvalidSource, nil)
	}
	if errors.Is(err, build.ErrAccountNotBound) {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), build.ErrTypeInvalidSource, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("reading account %s: %w", src.AccountID, err)
	}
	user := "x-access-token" // what GitHub expects beside an app or personal token
	if src.Provider == "gitlab" {
		user = "oauth2"
	}
	header := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+token))
	return []string{
		"GIT_CONFIG_COUNT=2",
		"GIT_CONFIG_KEY_0=http." + remote + ".extraHeader", "GIT_CONFIG_VALUE_0=" + header,
		"GIT_CONFIG_KEY_1=http.followRedirects", "GIT_CONFIG_VALUE_1=false",
	}, nil
}

// classifyFetch turns git's answer into a non-retryable error when retrying cannot help.
// authed says the fetch carried an account's token, so a redirect was refused on purpose.
func classifyFetch(err error, in CloneInput, authed bool) error {
	msg := err.Error()
	switch {
	case authed && redirectAnswer.MatchString(msg):
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the git server redirected the fetch of %s/%s: a fetch with an account's token never follows "+
				"a redirect, which could take the token to another host; set the provider's URL (SLIPWAY_GITHUB_URL, "+
				"SLIPWAY_GITLAB_URL) to the host that serves the repository", in.Source.Owner, in.Source.Repository),
			build.ErrTypeInvalidSource, nil)
	case strings.Contains(msg, "couldn't find remote ref"):
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s %q does not exist in %s/%s", in.Ref.Type, in.Ref.Name, in.Source.Owner, in.Source.Repository),
			build.ErrTypeRefNotFound, nil)
	case strings.Contains(msg, "not found") || strings.Contains(msg, "returned error: 404"):
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("repository %s/%s not found", in.Source.Owner, in.Source.Repository), build.ErrTypeInvalidSource, nil)
	case strings.Contains(msg, "Authentication failed") || strings.Contains(msg, "could not read Username") ||
		strings.Contains(msg, "returned error: 401") || strings.Contains(msg, "returned error: 403"):
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("repository %s/%s refused access: is it private without a connected account?",
				in.Source.Owner, in.Source.Repository), build.ErrTypeInvalidSource, nil)
	}
	return err
}

// classifyCheckout makes a tree git refuses to write non-retryable: a path holding "..", or
// ".git" in any case, is made on purpose to escape the checkout or plant hooks, and every
// retry would meet it again.
func classifyCheckout(err error) error {
	if strings.Contains(err.Error(), "invalid path") {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the commit holds a path git refuses to check out: %v", err), build.ErrTypeInvalidPath, nil)
	}
	return err
}

// gitRunner runs git in one checkout with a configuration that trusts nothing from the
// remote: no hooks, no submodules, no prompts, no system or user configuration, http(s) only.
type gitRunner struct {
	dir string
	log io.Writer
	// env is added to git's environment: the credentials of a private clone live here, where
	// no argument list, URL or log line shows them.
	env []string
}

func (g gitRunner) command(ctx context.Context, args ...string) *exec.Cmd {
	base := []string{
		"-c", "core.hooksPath=/dev/null",
		"-c", "protocol.allow=never", "-c", "protocol.http.allow=always", "-c", "protocol.https.allow=always",
		"-c", "submodule.recurse=false", "-c", "fetch.recurseSubmodules=false",
		"-c", "advice.detachedHead=false", "-c", "core.symlinks=true",
		// A cached mirror is locked only while its build's git runs: no gc may outlive it.
		"-c", "gc.autoDetach=false",
	}
	cmd := exec.CommandContext(ctx, "git", append(base, args...)...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(),
		"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_ASKPASS=/bin/false", "SSH_ASKPASS=/bin/false", "GIT_LFS_SKIP_SMUDGE=1", "GIT_TRACE_REDACT=1")
	cmd.Env = append(cmd.Env, g.env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs git, copying its stderr to the build log and naming it in the error.
func (g gitRunner) run(ctx context.Context, args ...string) error {
	var stderr bytes.Buffer
	cmd := g.command(ctx, args...)
	cmd.Stdout = g.log
	cmd.Stderr = io.MultiWriter(g.log, &stderr)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func (g gitRunner) output(ctx context.Context, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := g.command(ctx, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// refspecTarget is the local ref a "+SRC:DST" refspec fetches into.
func refspecTarget(refspec string) string {
	_, dst, _ := strings.Cut(refspec, ":")
	return dst
}

// deepenUntil fetches more history of the ref until commit is in it, which proves the commit
// is on the ref; it gives up with errNotOnRef when the history ends or maxDeepen is reached.
func (g gitRunner) deepenUntil(ctx context.Context, remote, refspec, commit string) error {
	for depth := 64; ; depth *= 4 {
		if depth > maxDeepen {
			depth = maxDeepen
		}
		if err := g.run(ctx, "fetch", "--depth="+fmt.Sprint(depth), "--no-tags", "--no-recurse-submodules", remote, refspec); err != nil {
			return err
		}
		// Reachable from the ref, not merely present: a cached mirror also holds the commits
		// of other refs and of heads a force push left behind.
		if g.isAncestor(ctx, commit, refspecTarget(refspec)) {
			return nil
		}
		shallow, err := g.output(ctx, "rev-parse", "--is-shallow-repository")
		if err != nil {
			return err
		}
		if shallow != "true" || depth == maxDeepen {
			return errNotOnRef
		}
	}
}

// heartbeatEvery records a heartbeat on a ticker until stopped, so a long step that reports
// no progress of its own is still seen alive (and sees cancellation).
func heartbeatEvery(ctx context.Context, every time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}
