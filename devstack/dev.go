package devstack

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/buildnet"
	"github.com/slipway-dev/slipway/config"
	"github.com/slipway-dev/slipway/registryauth"
)

// Ports of `make run`: those the README, the temporal CLI and config's defaults expect.
const (
	DevTemporalPort   = 7233
	DevTemporalUIPort = 8233
	DevRegistryPort   = 5000
)

// DevOptions are the options of `make run` (cmd/slipway-dev), read through getenv as the
// worker and the gateway read theirs: SLIPWAY_HOME, SLIPWAY_BUILD_ISOLATION,
// SLIPWAY_BUILD_EGRESS_ALLOW and SLIPWAY_TEMPORAL_UI_WRITE, the usual ports, and the registry's
// token realm at the gateway's address.
func DevOptions(getenv func(string) string, toolsDir string) (Options, error) {
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return Options{}, err
	}
	allow, err := buildnet.ParseAllow(getenv(buildnet.EnvEgressAllow))
	if err != nil {
		return Options{}, fmt.Errorf("reading the build network's allow-list: %w", err)
	}
	// The web UI shows every namespace's builds; its write actions (terminate, cancel,
	// signal, reset, start) are an operator's explicit choice.
	uiWrite := false
	if v := getenv("SLIPWAY_TEMPORAL_UI_WRITE"); v != "" {
		if uiWrite, err = strconv.ParseBool(v); err != nil {
			return Options{}, fmt.Errorf("SLIPWAY_TEMPORAL_UI_WRITE %q is not a boolean such as 1 or 0", v)
		}
	}
	return Options{
		Home:                   cfg.Home,
		ToolsDir:               toolsDir,
		TemporalPort:           DevTemporalPort,
		TemporalUIPort:         DevTemporalUIPort,
		TemporalUIWriteActions: uiWrite,
		RegistryPort:           DevRegistryPort,
		BuildHostNetwork:       !cfg.BuildIsolation,
		BuildEgressAllow:       allow,
		// The gateway is the registry's token service. By name, not 127.0.0.1:
		// go-containerregistry (crane) refuses a token realm on a loopback IP.
		RegistryTokenRealm: "http://" + realmHost(cfg.GatewayAddr) + registryauth.TokenPath,
	}, nil
}

// realmHost is addr with a loopback or unspecified IP spelled localhost.
func realmHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// WriteSummary tells the person who ran `make run` where each part of the stack is, with the
// worker and the gateway configured as cfg, and how to start a first build and log in to the
// registry. toolsDir is where the temporal CLI is, as given on the command line.
func (s *Stack) WriteSummary(w io.Writer, cfg config.Config, toolsDir string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nSlipway local stack is up. Ctrl-C stops everything.\n\n")
	fmt.Fprintf(tw, "Temporal gRPC\t%s\n", s.TemporalAddress)
	fmt.Fprintf(tw, "Temporal web UI\t%s\n", s.TemporalUIURL)
	fmt.Fprintf(tw, "BuildKit\t%s\n", s.BuildkitAddr)
	if len(s.emulation.platforms) > 0 {
		fmt.Fprintf(tw, "Platforms\t%s native; %s emulated (qemu-user-static)\n",
			nativePlatform(), strings.Join(s.emulation.platforms, ", "))
	} else {
		fmt.Fprintf(tw, "Platforms\t%s only: no emulator found (Debian's qemu-user-static)\n", nativePlatform())
	}
	if s.BuildBridge != "" {
		fmt.Fprintf(tw, "Build network\tbridge %s, host address %s; RUN steps reach the internet and %s only\n",
			s.BuildBridge, s.BuildGateway, buildnet.EnvEgressAllow)
	} else {
		fmt.Fprintf(tw, "Build network\tnone: SLIPWAY_BUILD_ISOLATION=off, RUN steps share the host's network\n")
	}
	fmt.Fprintf(tw, "Registry\thttp://%s (busybox is %s/library/busybox:latest), tokens from %s\n", s.Registry, s.Registry, s.RegistryTokenRealm)
	metrics := "metrics off"
	if cfg.WorkerMetricsAddr != "" {
		metrics = "metrics http://" + cfg.WorkerMetricsAddr + "/metrics"
	}
	fmt.Fprintf(tw, "Worker\tpolls task queue %s, %s\n", cfg.TaskQueue, metrics)
	fmt.Fprintf(tw, "Gateway\thttp://%s, metrics http://%s/metrics\n", cfg.GatewayAddr, cfg.GatewayAddr)
	fmt.Fprintf(tw, "Admin token\t%s\n", filepath.Join(cfg.Home, "admin-token"))
	fmt.Fprintf(tw, "SLIPWAY_HOME\t%s\n", cfg.Home)
	fmt.Fprintf(tw, "Stack logs\t%s\n", s.LogDir())
	if err := tw.Flush(); err != nil {
		return err
	}

	input, err := json.Marshal(build.Input{
		Namespace: "demo", Repository: "app", RuleID: "r-1",
		Source: build.Source{Provider: build.ProviderGitHub, Owner: "octo", Repository: "hello",
			CloneURL: "https://github.com/octo/hello.git"},
		Ref:         build.Ref{Type: build.RefBranch, Name: "main"},
		TagTemplate: "{branch}-{short_commit}",
		Image:       s.Registry + "/demo/app",
		Trigger:     build.TriggerManual,
	})
	if err != nil {
		return err
	}
	temporal := filepath.Join(toolsDir, "temporal")
	if !filepath.IsAbs(temporal) {
		temporal = "./" + temporal
	}
	_, err = fmt.Fprintf(w, "\nStart a build with the temporal CLI:\n"+
		"  %s workflow start --address %s --type %s --task-queue %s \\\n"+
		"    --workflow-id demo-build-1 --input '%s'\n\n"+
		"Log in to the registry with a Slipway user and its API token (the site admin is \"admin\"):\n"+
		"  crane auth login %s -u admin -p \"$(cat %s)\"    # or: docker login %s -u admin\n\n",
		temporal, s.TemporalAddress, build.WorkflowName, cfg.TaskQueue, input,
		s.Registry, filepath.Join(cfg.Home, "admin-token"), s.Registry)
	return err
}
