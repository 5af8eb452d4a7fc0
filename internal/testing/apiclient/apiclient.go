// Package apiclient calls a running gateway's API and webhook endpoints over HTTP, as a user or
// a Git host would, for the end-to-end tests and the bench, which both drive gateway binaries.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client calls the gateway at URL; HTTP nil is http.DefaultClient.
type Client struct {
	URL  string
	HTTP *http.Client
}

// Answer is one answer of the gateway as the caller saw it.
type Answer struct {
	Code int
	Body []byte
	// Took is from the request sent to the answer read; Answered is when it was read.
	Took     time.Duration
	Answered time.Time
}

// Call sends body (when not nil) as JSON with token as bearer (none when empty) and decodes a
// non-empty answer into out (when not nil), whatever its status: error answers are JSON too.
func (c Client) Call(ctx context.Context, method, path, token string, body, out any) (Answer, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return Answer{}, fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
	}
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	a, err := c.Post(ctx, method, path, raw, h)
	if err == nil && out != nil && len(a.Body) > 0 {
		if err := json.Unmarshal(a.Body, out); err != nil {
			return a, fmt.Errorf("%s %s answered %d, not JSON: %.200s: %w", method, path, a.Code, a.Body, err)
		}
	}
	return a, err
}

// Post sends body (JSON, as Git hosts send webhooks) with headers and reads the answer.
func (c Client) Post(ctx context.Context, method, path string, body []byte, headers map[string]string) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return Answer{}, fmt.Errorf("making request %s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return Answer{Took: time.Since(start)}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	a := Answer{Code: resp.StatusCode}
	a.Body, err = io.ReadAll(resp.Body)
	a.Answered = time.Now()
	if a.Took = a.Answered.Sub(start); err != nil {
		return a, fmt.Errorf("reading answer of %s %s: %w", method, path, err)
	}
	return a, nil
}

// Builds are the build ids a webhook answer names, none when it names none or is not JSON.
func (a Answer) Builds() []string {
	var body struct {
		Builds []string `json:"builds"`
	}
	_ = json.Unmarshal(a.Body, &body)
	return body.Builds
}
