package buildnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
)

// ClaimsDir holds one file per build network a process of this host set up, naming the
// process, so that the networks of processes that died without tearing theirs down (a killed
// test run) are removed by the next one instead of holding their subnets for ever.
const ClaimsDir = "/run/slipway-buildnet"

type claim struct {
	PID    int    `json:"pid"`
	Bridge string `json:"bridge"`
	Subnet string `json:"subnet"`
}

// Claim records that this process owns c's network. Call it with Lock held.
func Claim(c Config) error {
	if err := os.MkdirAll(ClaimsDir, 0o700); err != nil {
		return fmt.Errorf("recording the build network: %w", err)
	}
	b, err := json.Marshal(claim{PID: os.Getpid(), Bridge: c.Bridge, Subnet: c.Subnet.String()})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ClaimsDir, c.Bridge+".json"), b, 0o600); err != nil {
		return fmt.Errorf("recording the build network: %w", err)
	}
	return nil
}

// Release forgets the claim on c's network.
func Release(c Config) {
	os.Remove(filepath.Join(ClaimsDir, c.Bridge+".json"))
}

// SweepStale tears down the networks whose claiming process is gone, other than keep's (a
// restart of the same stack reuses its own). Call it with Lock held.
func SweepStale(ctx context.Context, keep string) error {
	entries, err := os.ReadDir(ClaimsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing build network claims: %w", err)
	}
	var errs []error
	for _, e := range entries {
		path := filepath.Join(ClaimsDir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var cl claim
		if json.Unmarshal(b, &cl) != nil || cl.Bridge == keep || alive(cl.PID) {
			continue
		}
		sub, _ := netip.ParsePrefix(cl.Subnet)
		if err := Teardown(ctx, Config{Bridge: cl.Bridge, Subnet: sub}); err != nil {
			errs = append(errs, err)
			continue
		}
		os.Remove(path)
	}
	return errors.Join(errs...)
}

// alive reports whether a process with pid exists (signal 0 checks without sending).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
