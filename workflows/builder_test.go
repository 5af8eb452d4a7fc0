package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/slipway-dev/slipway/activities"
	"github.com/slipway-dev/slipway/build"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

func input() build.Input {
	return build.Input{
		Namespace: "demo", Repository: "app", RuleID: "r-1",
		Source:         build.Source{Provider: "github", Owner: "octo", Repository: "hello"},
		Ref:            build.Ref{Type: build.RefBranch, Name: "main"},
		DockerfilePath: "build/Dockerfile",
		TagTemplate:    "{branch}-{short_commit}",
		BuildArgs:      map[string]string{"GREETING": "hi"},
		Image:          "127.0.0.1:5000/demo/app",
		Trigger:        build.TriggerManual,
	}
}

// newEnv registers the workflow and real (unused) activities so the mocks have names to
// match, and turns on sessions as the worker does.
func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	env := newBareEnv(t)
	mockSlots(env, testLimits)
	return env
}

// newBareEnv is newEnv without the build slot mocks, for tests that make their own.
func newBareEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{EnableSessionWorker: true})
	env.RegisterWorkflow(DockerBuilder)
	env.RegisterActivity(&activities.Activities{})
	return env
}

// testLimits are the worker limits the tests' builds run under.
var testLimits = activities.Limits{MaxTimeout: 3 * time.Hour, NamespaceMaxRunning: 4}

// mockSlots answers the worker's limits and grants every build its slot at once; releases
// are accepted.
func mockSlots(env *testsuite.TestWorkflowEnvironment, limits activities.Limits) {
	var a *activities.Activities
	env.OnActivity(a.BuildLimits, mock.Anything).Return(limits, nil)
	env.OnActivity(a.RequestSlot, mock.Anything, mock.Anything).Return(func(context.Context, activities.RequestSlotInput) error {
		env.SignalWorkflow(activities.SignalSlotGranted, nil)
		return nil
	})
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, activities.SignalSlotRelease, mock.Anything).Return(nil)
}

// calls records the activities a test workflow ran; the test environment runs activities
// scheduled together (resolve and tag) on goroutines of their own.
type calls struct {
	mu    sync.Mutex
	names []string
}

func (c *calls) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = append(c.names, name)
}

// String lists the calls in order, with resolve and tag, which run together, always in that
// order.
func (c *calls) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.ReplaceAll(strings.Join(c.names, ","), "tag,resolve", "resolve,tag")
}

// resolvedClone is res as a clone asked to resolve the paths returns it: the paths as given,
// the context the root.
func resolvedClone(in activities.CloneInput, res activities.CloneResult) activities.CloneResult {
	if in.Resolve != nil && (in.Paths == nil || res.Skip == "") {
		res.Resolved = &activities.ResolveResult{DockerfilePath: in.Resolve.DockerfilePath, ContextPath: "."}
	}
	return res
}

func mockHappy(env *testsuite.TestWorkflowEnvironment, c *calls) {
	var a *activities.Activities
	env.OnActivity(a.Clone, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CloneInput) (activities.CloneResult, error) {
		c.add("clone")
		if in.Workspace == "" || in.Ref.Name != "main" || in.Namespace == "" {
			return activities.CloneResult{}, errors.New("bad clone input")
		}
		return resolvedClone(in, activities.CloneResult{Commit: commit, LogURL: "http://gw/api/v1/builds/b/logs"}), nil
	})
	env.OnActivity(a.ResolveDockerfile, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ResolveInput) (activities.ResolveResult, error) {
		c.add("resolve")
		return activities.ResolveResult{DockerfilePath: in.DockerfilePath, ContextPath: "."}, nil
	})
	env.OnActivity(a.RenderTag, mock.Anything, mock.Anything).Return(func(_ context.Context, in build.RenderTagInput) (build.RenderTagResult, error) {
		c.add("tag")
		return build.RenderTags(in)
	})
	env.OnActivity(a.Build, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BuildInput) (activities.BuildResult, error) {
		c.add("build")
		if in.BuildArgs["GREETING"] != "hi" || in.DockerfilePath != "build/Dockerfile" || in.CacheRef != "127.0.0.1:5000/demo/app:buildcache" {
			return activities.BuildResult{}, errors.New("bad build input")
		}
		return activities.BuildResult{Digest: "sha256:abc"}, nil
	})
	env.OnActivity(a.Push, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PushInput) (activities.PushResult, error) {
		c.add("push")
		return activities.PushResult{Digest: "sha256:abc"}, nil
	})
	env.OnActivity(a.Cleanup, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CleanupInput) error {
		c.add("cleanup")
		return nil
	})
}

func TestDockerBuilderSucceeds(t *testing.T) {
	env := newEnv(t)
	var c calls
	mockHappy(env, &c)
	got := map[string]string{}
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		for k, v := range sa.GetUntypedValues() {
			got[k.GetName()], _ = v.(string)
		}
	}).Return(nil)
	memo := map[string]any{}
	env.OnUpsertMemo(mock.Anything).Run(func(args mock.Arguments) {
		for k, v := range args.Get(0).(map[string]any) {
			memo[k] = v
		}
	}).Return(nil)
	env.ExecuteWorkflow(DockerBuilder, input())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if memo[build.MemoLogURL] != "http://gw/api/v1/builds/b/logs" || memo[build.MemoDigest] != "sha256:abc" || memo[build.MemoCommit] != commit {
		t.Fatalf("memo = %v", memo)
	}
	var res build.Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Tags, ",") != "main-0123456" || res.Commit != commit || res.Digest != "sha256:abc" || res.LogURL == "" {
		t.Fatalf("result = %+v", res)
	}
	if got := c.String(); got != "clone,build,push,cleanup" {
		t.Fatalf("activities ran as %s", got)
	}
	v, err := env.QueryWorkflow(build.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var st build.Status
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	if st.Step != "done" || len(st.Steps) != 5 || st.LogURL == "" || st.HostAttempts != 1 {
		t.Fatalf("status = %+v", st)
	}
	for _, s := range st.Steps {
		if s.EndedAt == nil || s.Error != "" {
			t.Fatalf("step %+v did not end cleanly", s)
		}
	}
	for _, tt := range []struct {
		key  temporal.SearchAttributeKeyKeyword
		want string
	}{{build.AttrNamespace, "demo"}, {build.AttrRepository, "app"}, {build.AttrRule, "r-1"}, {build.AttrRef, "main"}, {build.AttrCommit, commit}, {build.AttrTrigger, "manual"}} {
		if got[tt.key.GetName()] != tt.want {
			t.Errorf("search attribute %s = %q, want %q", tt.key.GetName(), got[tt.key.GetName()], tt.want)
		}
	}
}

func TestDockerBuilderRefusesBadInputAtOnce(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*build.Input)
		want   string
	}{
		{"branch with slash", func(in *build.Input) { in.Ref.Name = "feature/login" }, "holds '/'"},
		{"bad image", func(in *build.Input) { in.Image = "Not A Name" }, "not a valid repository name"},
		{"bad ref type", func(in *build.Input) { in.Ref.Type = "commit" }, "not branch or tag"},
		{"unknown placeholder", func(in *build.Input) { in.TagTemplate = "{sha}" }, "unknown placeholder"},
		{"absolute dockerfile", func(in *build.Input) { in.DockerfilePath = "/etc/Dockerfile" }, "is absolute"},
		{"escaping context", func(in *build.Input) { in.ContextPath = "../x" }, "leaves the repository"},
		{"bad timeout", func(in *build.Input) { in.Timeout = "soon" }, "not a positive duration"},
		{"bad cache", func(in *build.Input) { in.Cache = "Not A Ref" }, "not an image reference"},
		{"clone_url with account_id", func(in *build.Input) {
			in.Source.CloneURL, in.Source.AccountID = "https://attacker.example/loot.git", "a-1"
		}, "both clone_url and account_id"},
		{"cache in another namespace", func(in *build.Input) { in.Cache = "127.0.0.1:5000/victim/app:latest" }, "outside the image repository"},
		{"cache in another registry", func(in *build.Input) { in.Cache = "evil.example/demo/app:buildcache" }, "outside the image repository"},
		{"BUILDKIT_SYNTAX arg", func(in *build.Input) { in.BuildArgs = map[string]string{"BUILDKIT_SYNTAX": "evil.example/fe"} }, `"BUILDKIT_SYNTAX" is reserved`},
		{"BUILDKIT_CACHE_MOUNT_NS arg", func(in *build.Input) {
			in.BuildArgs = map[string]string{"BUILDKIT_CACHE_MOUNT_NS": "slipway/victim/app"}
		}, `"BUILDKIT_CACHE_MOUNT_NS" is reserved`},
		{"arg value too long", func(in *build.Input) {
			in.BuildArgs = map[string]string{"V": strings.Repeat("v", build.MaxBuildArgValueLen+1)}
		}, "4097 bytes"},
		{"too many args", func(in *build.Input) {
			in.BuildArgs = map[string]string{}
			for i := range build.MaxBuildArgs + 1 {
				in.BuildArgs[fmt.Sprintf("A%d", i)] = "v"
			}
		}, "65 arguments"},
		{"seventeen tags", func(in *build.Input) { in.TagTemplate = strings.Repeat("{short_commit},", 16) + "latest" }, "17 tags"},
		{"timeout over the worker's longest", func(in *build.Input) { in.Timeout = "3h1m" }, "longer than this service allows (3h0m0s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			var c calls
			mockHappy(env, &c)
			in := input()
			tt.mutate(&in)
			env.ExecuteWorkflow(DockerBuilder, in)
			err := env.GetWorkflowError()
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || !appErr.NonRetryable() || !strings.Contains(appErr.Message(), tt.want) {
				t.Fatalf("error = %v, want non-retryable containing %q", err, tt.want)
			}
			if got := c.String(); got != "" {
				t.Fatalf("activities ran: %s", got)
			}
		})
	}
}

func TestDockerBuilderSanitizesRef(t *testing.T) {
	env := newEnv(t)
	var c calls
	var a *activities.Activities
	env.OnActivity(a.Clone, mock.Anything, mock.Anything).Return(activities.CloneResult{Commit: commit, LogURL: "l"}, nil)
	mockHappy(env, &c) // after the override: the first matching mock wins
	in := input()
	in.Ref.Name = "feature/login"
	in.SanitizeRef = true
	env.ExecuteWorkflow(DockerBuilder, in)
	var res build.Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Tags, ",") != "feature-login-0123456" {
		t.Fatalf("tags = %v", res.Tags)
	}
}

func TestDockerBuilderBuildFailureCleansUp(t *testing.T) {
	env := newEnv(t)
	var c calls
	var a *activities.Activities
	env.OnActivity(a.Build, mock.Anything, mock.Anything).Return(activities.BuildResult{},
		temporal.NewNonRetryableApplicationError("build failed: exit code: 3", build.ErrTypeBuildFailed, nil))
	mockHappy(env, &c) // after the override: the first matching mock wins
	env.ExecuteWorkflow(DockerBuilder, input())
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != build.ErrTypeBuildFailed {
		t.Fatalf("error = %v, want %s", err, build.ErrTypeBuildFailed)
	}
	if got := c.String(); got != "clone,cleanup" {
		t.Fatalf("activities ran as %s (build is mocked without a recorder)", got)
	}
	v, _ := env.QueryWorkflow(build.StatusQuery)
	var st build.Status
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	last := st.Steps[len(st.Steps)-1]
	if last.Name != build.StepBuild || !strings.Contains(last.Error, "exit code: 3") {
		t.Fatalf("last step = %+v", last)
	}
}

func TestDockerBuilderCancelCleansUp(t *testing.T) {
	env := newEnv(t)
	var c calls
	var a *activities.Activities
	env.OnActivity(a.Build, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ activities.BuildInput) (activities.BuildResult, error) {
		c.add("build")
		env.CancelWorkflow()
		select {
		case <-ctx.Done():
			return activities.BuildResult{}, ctx.Err()
		case <-time.After(10 * time.Second):
			return activities.BuildResult{}, errors.New("build was not cancelled")
		}
	})
	mockHappy(env, &c) // after the override: the first matching mock wins
	env.ExecuteWorkflow(DockerBuilder, input())
	var canceled *temporal.CanceledError
	if err := env.GetWorkflowError(); !errors.As(err, &canceled) {
		t.Fatalf("error = %v, want canceled", err)
	}
	if got := c.String(); got != "clone,build,cleanup" {
		t.Fatalf("activities ran as %s", got)
	}
}

func TestDockerBuilderTimesOut(t *testing.T) {
	env := newEnv(t)
	var c calls
	var a *activities.Activities
	var buildLimit atomic.Int64 // the activity runs on a goroutine of the test environment
	env.OnActivity(a.Build, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ activities.BuildInput) (activities.BuildResult, error) {
		info := activity.GetInfo(ctx)
		buildLimit.Store(int64(info.Deadline.Sub(info.StartedTime)))
		select {
		case <-ctx.Done():
			return activities.BuildResult{}, ctx.Err()
		case <-time.After(10 * time.Second):
			return activities.BuildResult{}, errors.New("build was not stopped at the timeout")
		}
	})
	mockHappy(env, &c) // after the override: the first matching mock wins
	in := input()
	in.Timeout = "1s"
	env.SetTestTimeout(20 * time.Second)
	env.ExecuteWorkflow(DockerBuilder, in)
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != build.ErrTypeTimedOut {
		t.Fatalf("error = %v, want %s", err, build.ErrTypeTimedOut)
	}
	if got := c.String(); !strings.HasSuffix(got, ",cleanup") {
		t.Fatalf("workspace not cleaned: %s", got)
	}
	// The build's own timer must fire first: a build step (or session) timing out at the same
	// instant raced it, and a session that timed out skipped the cleanup.
	if limit := time.Duration(buildLimit.Load()); limit <= time.Second+time.Minute {
		t.Fatalf("the build step may run %s, want well past the build's 1s timeout", limit)
	}
}

func TestDockerBuilderPostsCommitStatuses(t *testing.T) {
	tests := []struct {
		name      string
		buildErr  error
		postFails bool
		want      string
	}{
		{"success", nil, false, "pending,success"},
		{"build failure", temporal.NewNonRetryableApplicationError("build failed: exit code: 3", build.ErrTypeBuildFailed, nil), false, "pending,failure"},
		{"posting fails, the build does not", nil, true, "pending,success"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			var c calls
			var a *activities.Activities
			var states []string
			env.OnActivity(a.SetCommitStatus, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.StatusInput) error {
				if in.Commit != commit || in.Source.AccountID != "a-1" || in.Namespace != input().Namespace || in.Namespace == "" {
					return errors.New("bad status input")
				}
				if want := "slipway/" + input().Namespace + "/" + input().Repository; in.Context != want {
					return fmt.Errorf("status context %q, want %q", in.Context, want)
				}
				states = append(states, in.State)
				if tt.postFails {
					return temporal.NewNonRetryableApplicationError("github is down", "Unavailable", nil)
				}
				return nil
			})
			if tt.buildErr != nil {
				env.OnActivity(a.Build, mock.Anything, mock.Anything).Return(activities.BuildResult{}, tt.buildErr)
			}
			mockHappy(env, &c)
			in := input()
			in.Source.AccountID = "a-1"
			env.ExecuteWorkflow(DockerBuilder, in)
			err := env.GetWorkflowError()
			if (err != nil) != (tt.buildErr != nil) {
				t.Fatalf("workflow error = %v", err)
			}
			if got := strings.Join(states, ","); got != tt.want {
				t.Fatalf("statuses = %s, want %s", got, tt.want)
			}
		})
	}
}

// A step that finds no checkout (a reset to a later step lands on a session that never
// cloned) makes the build start over on a new session, as a lost host does.
func TestDockerBuilderStartsOverWhenWorkspaceLost(t *testing.T) {
	env := newEnv(t)
	var c calls
	var a *activities.Activities
	builds := 0
	env.OnActivity(a.Build, mock.Anything, mock.Anything).Return(func(context.Context, activities.BuildInput) (activities.BuildResult, error) {
		builds++
		if builds == 1 {
			return activities.BuildResult{}, temporal.NewNonRetryableApplicationError("no checkout", build.ErrTypeWorkspaceLost, nil)
		}
		return activities.BuildResult{Digest: "sha256:abc"}, nil
	})
	mockHappy(env, &c) // after the override: the first matching mock wins
	env.ExecuteWorkflow(DockerBuilder, input())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	v, err := env.QueryWorkflow(build.StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var st build.Status
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	if st.HostAttempts != 2 || builds != 2 {
		t.Fatalf("host attempts %d, builds %d; want 2 and 2", st.HostAttempts, builds)
	}
	if got := c.String(); got != "clone,cleanup,clone,push,cleanup" {
		t.Fatalf("activities ran as %s", got)
	}
}

// A push that removed the workspace itself spares the build its Cleanup step; one that could
// not (it reports so) leaves it to Cleanup.
func TestDockerBuilderSkipsCleanupAfterPushRemovedWorkspace(t *testing.T) {
	tests := []struct {
		removed bool
		want    string
	}{
		{removed: true, want: "clone,build,push"},
		{removed: false, want: "clone,build,push,cleanup"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("removed=%t", tt.removed), func(t *testing.T) {
			env := newEnv(t)
			var c calls
			var a *activities.Activities
			env.OnActivity(a.Push, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PushInput) (activities.PushResult, error) {
				c.add("push")
				if !in.RemoveWorkspace {
					return activities.PushResult{}, errors.New("push was not asked to remove the workspace")
				}
				return activities.PushResult{Digest: "sha256:abc", WorkspaceRemoved: tt.removed}, nil
			})
			mockHappy(env, &c) // after the override: the first matching mock wins
			env.ExecuteWorkflow(DockerBuilder, input())
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			if got := c.String(); got != tt.want {
				t.Fatalf("activities ran as %s, want %s", got, tt.want)
			}
		})
	}
}

// TestDockerBuilderSupersededOnlyForPushBuilds: a push build whose commit left its branch
// completes as superseded with the reason; the same error fails a build started by hand (a
// mistyped commit is no force push) and a tag build.
func TestDockerBuilderSupersededOnlyForPushBuilds(t *testing.T) {
	tests := []struct {
		name       string
		trigger    string
		ref        build.Ref
		superseded bool
	}{
		{"push to a branch", build.TriggerPush, build.Ref{Type: build.RefBranch, Name: "main"}, true},
		{"build now", build.TriggerManual, build.Ref{Type: build.RefBranch, Name: "main"}, false},
		{"tag", build.TriggerTag, build.Ref{Type: build.RefTag, Name: "v1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			var c calls
			var a *activities.Activities
			env.OnActivity(a.Clone, mock.Anything, mock.Anything).Return(activities.CloneResult{},
				temporal.NewNonRetryableApplicationError("commit x is not on branch \"main\"", build.ErrTypeCommitNotOnRef, nil))
			mockHappy(env, &c)
			memo := map[string]any{}
			env.OnUpsertMemo(mock.Anything).Run(func(args mock.Arguments) {
				for k, v := range args.Get(0).(map[string]any) {
					memo[k] = v
				}
			}).Return(nil)
			in := input()
			in.Trigger, in.Ref, in.Commit, in.TagTemplate = tt.trigger, tt.ref, commit, "{ref}"
			env.ExecuteWorkflow(DockerBuilder, in)
			err := env.GetWorkflowError()
			if !tt.superseded {
				var appErr *temporal.ApplicationError
				if !errors.As(err, &appErr) || appErr.Type() != build.ErrTypeCommitNotOnRef {
					t.Fatalf("error = %v, want %s", err, build.ErrTypeCommitNotOnRef)
				}
				return
			}
			if err != nil {
				t.Fatalf("superseded build failed: %v", err)
			}
			var res build.Result
			if err := env.GetWorkflowResult(&res); err != nil {
				t.Fatal(err)
			}
			if res.Status != build.OutcomeSuperseded || !strings.Contains(res.Reason, "not on branch") || len(res.Tags) != 0 {
				t.Fatalf("result = %+v", res)
			}
			if memo[build.MemoOutcome] != build.OutcomeSuperseded || memo[build.MemoReason] != res.Reason || memo[build.MemoError] != nil {
				t.Fatalf("memo = %v", memo)
			}
		})
	}
}

// TestDockerBuilderRecordsHeldTags: the push step gets the build's commit and mutable tags,
// and the tags it held back go into the result and the memo; tags lists only those written.
func TestDockerBuilderRecordsHeldTags(t *testing.T) {
	env := newEnv(t)
	var c calls
	var a *activities.Activities
	var got activities.PushInput
	held := []build.HeldTag{{Tag: "main", Reason: "the tag carries y, which is newer than x"}}
	env.OnActivity(a.Push, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PushInput) (activities.PushResult, error) {
		got = in
		return activities.PushResult{Digest: "sha256:abc", Tags: []string{"main-0123456"}, Held: held}, nil
	})
	mockHappy(env, &c)
	memo := map[string]any{}
	env.OnUpsertMemo(mock.Anything).Run(func(args mock.Arguments) {
		for k, v := range args.Get(0).(map[string]any) {
			memo[k] = v
		}
	}).Return(nil)
	in := input()
	in.TagTemplate = "{branch}, {branch}-{short_commit}"
	env.ExecuteWorkflow(DockerBuilder, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if got.Commit != commit || strings.Join(got.Mutable, ",") != "main" || got.Ref != in.Ref || got.Source != in.Source {
		t.Fatalf("push input = %+v", got)
	}
	var res build.Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Tags, ",") != "main-0123456" || len(res.HeldTags) != 1 || res.HeldTags[0] != held[0] {
		t.Fatalf("result = %+v", res)
	}
	if h, ok := memo[build.MemoHeldTags].([]build.HeldTag); !ok || len(h) != 1 {
		t.Fatalf("memo held_tags = %#v", memo[build.MemoHeldTags])
	}
}
