package e2e

import (
	"net"
	"net/http"

	"github.com/slipway-dev/slipway/internal/testing/gitserver"
)

// serveGit serves the bare repositories under root over smart HTTP for the whole run.
func serveGit(root string) (string, error) {
	h, err := gitserver.Handler(root, "", "")
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go http.Serve(ln, h)
	return "http://" + ln.Addr().String(), nil
}
