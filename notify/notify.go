// Package notify turns a build event into the request a notification's receiver gets: the
// body (the event as JSON, or a Slack-compatible text), its HMAC-SHA256 signature, and the
// send itself, which follows no redirect and reads only the start of the answer. It also holds
// the checks a receiver's URL must pass. It links no BuildKit, so the gateway uses it too.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/build"
)

// Formats of a notification's body.
const (
	FormatJSON  = "json"
	FormatSlack = "slack"
)

// Headers every delivery carries.
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body under the
	// notification's secret.
	HeaderSignature = "X-Slipway-Signature"
	// HeaderEvent names the build event.
	HeaderEvent = "X-Slipway-Event"
	// HeaderDelivery is the delivery's id: the same on every attempt of one delivery.
	HeaderDelivery = "X-Slipway-Delivery"
)

// MaxURL bounds a receiver's URL.
const MaxURL = 2048

// maxAnswer is how much of a receiver's answer is read and kept in the delivery log.
const maxAnswer = 512

// CheckURL refuses a receiver URL that is not absolute http or https with a host, or that
// carries credentials (they would show in every listing; the signature authenticates).
func CheckURL(raw string) error {
	if len(raw) > MaxURL {
		return fmt.Errorf("url is longer than %d bytes", MaxURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url %q does not parse", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("url %q is not http or https", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("url %q names no host", raw)
	}
	if u.User != nil {
		return fmt.Errorf("url must not carry credentials (the signature header authenticates deliveries)")
	}
	if u.Fragment != "" {
		return fmt.Errorf("url %q has a fragment", raw)
	}
	return nil
}

// CheckEvents refuses an empty list, an unknown event and a repeated one.
func CheckEvents(events []string) error {
	if len(events) == 0 {
		return fmt.Errorf("events is empty: name at least one of %s", strings.Join(build.EventNames(), ", "))
	}
	seen := map[string]bool{}
	for _, e := range events {
		if !slices.Contains(build.EventNames(), e) {
			return fmt.Errorf("event %q is not one of %s", e, strings.Join(build.EventNames(), ", "))
		}
		if seen[e] {
			return fmt.Errorf("event %q is named twice", e)
		}
		seen[e] = true
	}
	return nil
}

// CheckFormat refuses a format other than json and slack.
func CheckFormat(format string) error {
	if format != FormatJSON && format != FormatSlack {
		return fmt.Errorf("format %q is not json or slack", format)
	}
	return nil
}

// Body renders ev in format: the event itself (json), or {"text"} (slack).
func Body(format string, ev build.BuildEvent) ([]byte, error) {
	if ev.Tags == nil {
		ev.Tags = []string{}
	}
	switch format {
	case FormatJSON, "":
		return json.Marshal(ev)
	case FormatSlack:
		return json.Marshal(map[string]string{"text": SlackText(ev)})
	}
	return nil, fmt.Errorf("format %q is not json or slack", format)
}

// SlackText is one line for a chat: what happened to which build, with a link to its page.
func SlackText(ev build.BuildEvent) string {
	mark := map[string]string{
		build.EventStarted: ":hourglass_flowing_sand:", build.EventSucceeded: ":white_check_mark:",
		build.EventFailed: ":x:", build.EventCanceled: ":no_entry_sign:", build.EventTimedOut: ":alarm_clock:",
	}[ev.Event]
	var b strings.Builder
	fmt.Fprintf(&b, "%s Build <%s|%s> of %s/%s", mark, ev.BuildURL, ev.BuildID, ev.Namespace, ev.Repository)
	if ev.Ref.Name != "" {
		fmt.Fprintf(&b, " (%s %s", ev.Ref.Type, ev.Ref.Name)
		if len(ev.Commit) >= 7 {
			fmt.Fprintf(&b, " @ %s", ev.Commit[:7])
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, " %s", strings.ReplaceAll(ev.Status, "_", " "))
	if len(ev.Tags) > 0 {
		fmt.Fprintf(&b, ": %s:%s", ev.Image, strings.Join(ev.Tags, ", "))
	}
	if ev.Error != "" {
		fmt.Fprintf(&b, ": %s", ev.Error)
	}
	return b.String()
}

// Sign is the HeaderSignature value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature is body's under secret, in constant time. Receivers
// written in Go can use it.
func Verify(secret string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(signature))
}

// Answer is what a receiver made of one attempt.
type Answer struct {
	// Status is the HTTP status, 0 when the receiver did not answer.
	Status int
	// Body is the start of the answer, at most maxAnswer bytes, valid UTF-8.
	Body string
}

// Request is one attempt of one delivery.
type Request struct {
	URL, Secret, Event, DeliveryID string
	Body                           []byte
}

// NewClient is the HTTP client deliveries go through: it follows no redirect (a receiver that
// moved is a failed delivery the log shows, not a request to wherever it points), gives each
// attempt timeout and, unless private is set, connects to no loopback, private, link-local or
// unspecified address. The check is made on the address dialed, after name resolution, so a
// name that resolves to an inner address is refused too.
func NewClient(timeout time.Duration, private bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	if !private {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			return checkPublic(address)
		}
	}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: timeout,
		MaxIdleConns:        16,
		IdleConnTimeout:     time.Minute,
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// ErrPrivateAddress wraps the error of a delivery to an address of the service's own networks.
var ErrPrivateAddress = errors.New("receiver address is not public")

// checkPublic refuses a dialed address that is loopback, private, link-local, multicast or
// unspecified.
func checkPublic(address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrPrivateAddress, address)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrPrivateAddress, host)
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return fmt.Errorf("%w: %s (an operator allows it with SLIPWAY_NOTIFY_PRIVATE=allow)", ErrPrivateAddress, ip)
	}
	return nil
}

// ErrRefused wraps the error of an attempt the receiver answered with a status other than 2xx.
var ErrRefused = errors.New("receiver refused the delivery")

// Send makes one attempt: a signed POST of r.Body to r.URL. It returns an error for anything
// but a 2xx answer, and the answer as far as there was one.
func Send(ctx context.Context, client *http.Client, r Request) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return Answer{}, fmt.Errorf("making the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Slipway-Notifications")
	req.Header.Set(HeaderSignature, Sign(r.Secret, r.Body))
	req.Header.Set(HeaderEvent, r.Event)
	req.Header.Set(HeaderDelivery, r.DeliveryID)
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("posting to the receiver: %w", redact(err))
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	a := Answer{Status: resp.StatusCode, Body: strings.ToValidUTF8(string(head), "?")}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return a, fmt.Errorf("%w: HTTP %d", ErrRefused, resp.StatusCode)
	}
	return a, nil
}

// redact drops the URL a *url.Error repeats: the query string may hold a receiver's token
// (Slack's incoming webhook URLs are one), and errors reach logs and the delivery log.
func redact(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}
