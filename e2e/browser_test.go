package e2e

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slipway-dev/slipway/devstack"
	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// TestConsoleBuildNowInBrowser presses Build now in headless Chromium on the real stack and
// watches the build through to its image: the records page's status cell leaves queued or
// running for succeeded, and the build page shows the RUN step's output as it streams.
func TestConsoleBuildNowInBrowser(t *testing.T) {
	browserPath, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the console's browser tests need Debian's chromium package (scripts/tools.sh installs it)")
	}
	w := startWorker(t)
	t.Cleanup(w.stop)
	g := startGateway(t)
	owner := "e2e-browser"
	// The output line is not the command's text, so only the build's output can show it; the
	// sleep keeps the build running while the page follows its log.
	(&gitserver.Server{Root: env.gitRoot, URL: env.gitURL}).NewRepo(t, owner, "hello").Commit("main",
		map[string]string{"Dockerfile": "FROM busybox\nRUN sleep 10 && echo \"built $((6*7)) in the browser\"\n"})
	const line = "built 42 in the browser"

	var alice struct{ Token string }
	if code := g.call(t, "POST", "/api/v1/users", g.admin, map[string]string{"name": "alice"}, &alice); code != 201 {
		t.Fatalf("create user: %d", code)
	}
	g.call(t, "POST", "/api/v1/namespaces", alice.Token, map[string]string{"name": "web"}, nil)
	g.call(t, "POST", "/api/v1/namespaces/web/repositories", alice.Token, map[string]string{"name": "app"}, nil)
	if code := g.call(t, "POST", "/api/v1/namespaces/web/repositories/app/build-rules", alice.Token, map[string]any{
		"source":   map[string]string{"provider": "github", "owner": owner, "repository": "hello"},
		"triggers": map[string]any{"branches": []string{"main"}},
	}, nil); code != 201 {
		t.Fatalf("create rule: %d", code)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browserPath),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("lang", "en-US"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()
	// The first action starts the browser, which lives as long as tab: not a step's timeout.
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, time.Minute)
		defer cancel()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(tab, 30*time.Second)
		defer cancel()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("evaluating %s: %v", js, err)
		}
		return v
	}
	// poll evaluates js until it answers want, or something starting with "!", which fails at
	// once; what it answered last is in the failure.
	poll := func(what, js, want string, reload bool) {
		t.Helper()
		var got string
		err := devstack.Poll(t.Context(), time.Second, 3*time.Minute, func() (bool, error) {
			if reload {
				do("reloading "+what, chromedp.Reload(), chromedp.WaitReady(chromedp.CSS("main h1")))
			}
			if got = eval(js); strings.HasPrefix(got, "!") {
				return false, errors.New("the page went wrong")
			}
			return got == want, nil
		})
		if err != nil {
			t.Fatalf("%s: %v; last %q:\n%s", what, err, got, eval("document.body.innerText"))
		}
	}

	do("signing in",
		chromedp.Navigate(g.url+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), alice.Token+"\r"),
		chromedp.WaitVisible(chromedp.CSS("form.logout")),
	)
	repo := g.url + "/ns/web/repos/app"
	do("build now",
		chromedp.Navigate(repo+"/rules"),
		chromedp.WaitVisible(chromedp.CSS(`a[href$="/build"]`)),
		chromedp.Click(chromedp.CSS(`a[href$="/build"]`)),
		chromedp.WaitVisible(chromedp.ID("ref")),
		chromedp.SetValue(chromedp.ID("ref"), "main"),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("log")),
	)
	buildPage := eval("location.pathname")
	if !strings.HasPrefix(buildPage, "/builds/") {
		t.Fatalf("build now went to %s", buildPage)
	}
	statusCell := `(document.querySelector('table.records a[href="` + buildPage + `"]')?.closest("tr").querySelector(".status")?.textContent ?? "no row").trim()`

	do("records", chromedp.Navigate(repo+"/builds"), chromedp.WaitVisible(chromedp.CSS("table.records")))
	if s := eval(statusCell); s != "queued" && s != "running" {
		t.Fatalf("records page right after Build now: status %q, want queued or running", s)
	}

	// The build page, opened while the build runs, follows the log: the RUN step's output
	// arrives in the same document (the mark survives), then the page shows the end.
	do("build page", chromedp.Navigate(g.url+buildPage), chromedp.WaitVisible(chromedp.ID("log")))
	if f := eval(`document.getElementById("log").dataset.follow`); f != "1" {
		t.Fatalf("the build page opened on a build that is no longer running (data-follow %q)", f)
	}
	eval(`window.slipwayMark = "same page"; ""`)
	poll("the streamed log line", `(window.slipwayMark === "same page" && document.getElementById("log").textContent.includes("`+line+`")) ? "streamed" :
		(window.slipwayMark ? "waiting" : "!reloaded before the line")`, "streamed", false)
	poll("the build page's status", `document.getElementById("build-status")?.textContent.trim() ?? ""`, "succeeded", false)

	do("records", chromedp.Navigate(repo+"/builds"), chromedp.WaitVisible(chromedp.CSS("table.records")))
	poll("the records page's status cell", statusCell, "succeeded", true)
	if log := eval(`fetch("` + buildPage + `/log").then(r => r.text())`); !strings.Contains(log, line) {
		t.Fatalf("the finished build's log lacks %q:\n%s", line, log)
	}
}
