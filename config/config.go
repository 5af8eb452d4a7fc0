// Package config reads Slipway's settings from the SLIPWAY_* environment variables, for the
// worker and the gateway alike, so both agree on every default.
package config

import (
	"golang.org/x/oauth2"

	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/cgroup"
)

// MaxWebhookBody is the most a webhook delivery may carry: GitHub caps payloads at 25 MB.
const MaxWebhookBody = 25 << 20

// Config is every setting of a Slipway process. Secrets are not settings: they are looked up
// where they are used.
type Config struct {
	Home              string
	TemporalAddress   string
	TemporalNamespace string
	TemporalUIURL     string
	TaskQueue         string
	BuildkitAddr      string
	Registry          string
	DatabaseURL       string
	GatewayAddr       string
	// GatewayURL is how others reach the gateway; log and build links are built from it.
	GatewayURL   string
	GitHubURL    string
	GitHubAPIURL string
	GitLabURL    string
	// GitHubOAuth and GitLabOAuth are the OAuth apps the console's "Connect GitHub/GitLab"
	// authorizes with (SLIPWAY_GITHUB_OAUTH_CLIENT_ID and _SECRET, the same for GITLAB),
	// against GitHubURL and GitLabURL; a provider without a client id offers token pasting
	// only.
	GitHubOAuth, GitLabOAuth OAuthApp
	// OAuthCallbackURL is where the providers send people back to
	// (SLIPWAY_OAUTH_CALLBACK_URL); the provider's name is appended. Empty means
	// GatewayURL/oauth/callback, which is what to register with the OAuth app.
	OAuthCallbackURL string
	// MaxConcurrentBuilds bounds the builds one worker runs at once.
	MaxConcurrentBuilds int
	// ImageStoreTTL is how long a worker keeps image blobs no build used in its image store
	// (ImagesDir); 0 (from "off") exports every image whole into its workspace instead.
	ImageStoreTTL time.Duration
	// StreamedPush has BuildKit push each image's layers to the registry in the build's solve
	// (SLIPWAY_STREAMED_PUSH, default off), so the Push step writes only tags. It is off by
	// default: two builds streaming at once on one worker were seen to hang in BuildKit
	// v0.34.2's solve (the bench's throughput section, 2 concurrent builds); off uploads the
	// image in the Push step.
	StreamedPush bool
	// DeferredCacheExport writes the registry cache of a build on a git cache slot after its
	// image is out, in a second solve in the background (SLIPWAY_DEFERRED_CACHE_EXPORT, default
	// off). Off by default: in the bench's throughput section, builds started by a worker that
	// replaced one stopped during such an export hung in BuildKit's solve (not yet understood).
	DeferredCacheExport bool
	// GitCacheBytes bounds the host's Git cache (GitCacheDir: a mirror and a few checkout
	// folders per source, SLIPWAY_GIT_CACHE_BYTES, default 4g); past it the least recently
	// used sources no build holds are dropped. 0 (from "off") clones every build afresh.
	GitCacheBytes int64
	// DeliveryRetention is how long the gateway remembers the webhook events that started a
	// build (SLIPWAY_DELIVERY_RETENTION, default 90d), so a late or replayed delivery starts
	// nothing even after Temporal forgot the build. Keep it longer than Temporal's retention.
	DeliveryRetention time.Duration
	// RegistryTokenKey is the file of the key that signs the registry's tokens
	// (SLIPWAY_REGISTRY_TOKEN_KEY, default SLIPWAY_HOME/registry-token.key): the gateway's token
	// service and the worker share it, and the registry trusts its certificate beside it.
	RegistryTokenKey string
	// RegistryTokenHosts are the names of the registry that trusts that key
	// (SLIPWAY_REGISTRY_TOKEN_HOSTS, comma-separated, default SLIPWAY_REGISTRY): the worker
	// mints a build's tokens for these and leaves other registries to the Docker config. A
	// string, so a Config stays comparable; TokenHosts splits it.
	RegistryTokenHosts string
	// MaxBuildTimeout is the longest timeout a build may ask for (SLIPWAY_MAX_BUILD_TIMEOUT):
	// the gateway answers a longer one with 400, the workflow fails such a build at once.
	MaxBuildTimeout time.Duration
	// NamespaceMaxRunning is how many builds of one namespace run at once
	// (SLIPWAY_NAMESPACE_MAX_RUNNING); the others wait as queued.
	NamespaceMaxRunning int
	// BuildFrontends are the image patterns a Dockerfile's `# syntax=` may name
	// (SLIPWAY_BUILD_FRONTENDS, comma-separated); the built-in frontend is always allowed.
	BuildFrontends []string
	// BuildLimits bound the memory, processes and CPU of the RUN steps of one image
	// repository's builds.
	BuildLimits cgroup.Limits
	// BuildCgroup is the cgroup (a path below /sys/fs/cgroup, shared with buildkitd's host)
	// under which the worker makes each image repository's cgroup; empty leaves RUN steps in
	// buildkitd's default cgroup parent (SLIPWAY_BUILD_CGROUP, set by the local stack).
	BuildCgroup string
	// WorkerMetricsAddr is where the worker serves /metrics, /healthz and /readyz; empty (from
	// "off") serves nothing.
	WorkerMetricsAddr string
	// BuildIsolation is false only when the operator opts out (SLIPWAY_BUILD_ISOLATION=off):
	// the worker then builds without checking that RUN steps are kept off the service's
	// network, and warns at every start and in every build log.
	BuildIsolation bool
	// NotifyPrivate lets notifications reach loopback, private and link-local addresses
	// (SLIPWAY_NOTIFY_PRIVATE=allow). Off by default: the worker sits next to Temporal, the
	// registry and buildkitd, and a receiver's answer is shown in the delivery log.
	NotifyPrivate bool
	// NamespaceCreators says who may create namespaces (SLIPWAY_NAMESPACE_CREATORS):
	// CreatorsAnyone (any signed-in user, the default) or CreatorsAdmin (the site admin only).
	NamespaceCreators string
	// BuildBridge names the build network's bridge when buildkitd runs on the worker's host
	// (SLIPWAY_BUILD_BRIDGE); the worker checks its egress filter before each build.
	BuildBridge string

	// WebhookConcurrency bounds the webhook bodies the gateway reads at once
	// (SLIPWAY_WEBHOOK_CONCURRENCY); a delivery beyond it is answered 503 with Retry-After.
	WebhookConcurrency int
	// WebhookBuffer bounds the bytes of webhook bodies held at once (SLIPWAY_WEBHOOK_BUFFER_MIB,
	// in MiB), weighed by each delivery's Content-Length before it is read; at least one
	// largest delivery (25 MiB).
	WebhookBuffer int64
	// LogFollowersPerUser bounds the followed logs one user streams at once
	// (SLIPWAY_LOG_FOLLOWERS_PER_USER); one more is answered 429.
	LogFollowersPerUser int
	// LogFollowIdle ends a followed log that got no new bytes for this long
	// (SLIPWAY_LOG_FOLLOW_IDLE), with a note saying so.
	LogFollowIdle time.Duration

	// TemporalTLSCert and TemporalTLSKey are PEM files of the client certificate for an mTLS
	// Temporal cluster (Temporal Cloud's mTLS namespaces, a self-hosted cluster with
	// internode and frontend TLS).
	TemporalTLSCert string
	TemporalTLSKey  string
	// TemporalTLSCA is a PEM file of the CAs the frontend's certificate is checked against;
	// empty means the system's roots.
	TemporalTLSCA string
	// TemporalTLSServerName is the name the frontend's certificate must hold, when the address
	// does not (an IP, a load balancer).
	TemporalTLSServerName string
	// TemporalAPIKey authenticates to Temporal Cloud with an API key, sent over TLS.
	TemporalAPIKey Secret
}

// Values of SLIPWAY_NAMESPACE_CREATORS.
const (
	// CreatorsAnyone lets every signed-in user create namespaces (and become their admin).
	CreatorsAnyone = "anyone"
	// CreatorsAdmin lets only the site admin create namespaces.
	CreatorsAdmin = "admin"
)

// FromEnv reads the configuration through getenv (os.Getenv in a main, a map in a test).
func FromEnv(getenv func(string) string) (Config, error) {
	get := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	home, err := filepath.Abs(get("SLIPWAY_HOME", "./.slipway"))
	if err != nil {
		return Config{}, fmt.Errorf("SLIPWAY_HOME: %w", err)
	}
	c := Config{
		Home:              home,
		TemporalAddress:   get("SLIPWAY_TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		TemporalNamespace: get("SLIPWAY_TEMPORAL_NAMESPACE", "default"),
		TemporalUIURL:     strings.TrimSuffix(get("SLIPWAY_TEMPORAL_UI_URL", "http://127.0.0.1:8233"), "/"),
		TaskQueue:         get("SLIPWAY_TASK_QUEUE", build.DefaultTaskQueue),
		BuildkitAddr:      get("SLIPWAY_BUILDKIT_ADDR", "unix://"+filepath.Join(home, "buildkitd.sock")),
		Registry:          get("SLIPWAY_REGISTRY", "127.0.0.1:5000"),
		DatabaseURL:       get("SLIPWAY_DATABASE_URL", filepath.Join(home, "slipway.db")),
		GatewayAddr:       get("SLIPWAY_GATEWAY_ADDR", "127.0.0.1:8080"),
		GitHubURL:         strings.TrimSuffix(get("SLIPWAY_GITHUB_URL", "https://github.com"), "/"),
		GitHubAPIURL:      strings.TrimSuffix(get("SLIPWAY_GITHUB_API_URL", "https://api.github.com"), "/"),
		GitLabURL:         strings.TrimSuffix(get("SLIPWAY_GITLAB_URL", "https://gitlab.com"), "/"),
	}
	c.GatewayURL = strings.TrimSuffix(get("SLIPWAY_GATEWAY_URL", "http://"+c.GatewayAddr), "/")
	c.GitHubOAuth = OAuthApp{ClientID: get("SLIPWAY_GITHUB_OAUTH_CLIENT_ID", ""), ClientSecret: get("SLIPWAY_GITHUB_OAUTH_CLIENT_SECRET", "")}
	c.GitLabOAuth = OAuthApp{ClientID: get("SLIPWAY_GITLAB_OAUTH_CLIENT_ID", ""), ClientSecret: get("SLIPWAY_GITLAB_OAUTH_CLIENT_SECRET", "")}
	c.OAuthCallbackURL = strings.TrimSuffix(get("SLIPWAY_OAUTH_CALLBACK_URL", ""), "/")
	n, err := strconv.Atoi(get("SLIPWAY_MAX_CONCURRENT_BUILDS", "2"))
	if err != nil || n < 1 {
		return Config{}, fmt.Errorf("SLIPWAY_MAX_CONCURRENT_BUILDS %q is not a positive number", getenv("SLIPWAY_MAX_CONCURRENT_BUILDS"))
	}
	c.MaxConcurrentBuilds = n
	if ttl := get("SLIPWAY_IMAGE_STORE_TTL", "6h"); !strings.EqualFold(ttl, "off") {
		d, err := time.ParseDuration(ttl)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("SLIPWAY_IMAGE_STORE_TTL %q is not a positive duration (such as 6h) or off", ttl)
		}
		c.ImageStoreTTL = d
	}
	switch dc := strings.ToLower(get("SLIPWAY_DEFERRED_CACHE_EXPORT", "off")); dc {
	case "on", "off":
		c.DeferredCacheExport = dc == "on"
	default:
		return Config{}, fmt.Errorf("SLIPWAY_DEFERRED_CACHE_EXPORT %q is neither on nor off", dc)
	}
	switch sp := strings.ToLower(get("SLIPWAY_STREAMED_PUSH", "off")); sp {
	case "on", "off":
		c.StreamedPush = sp == "on"
	default:
		return Config{}, fmt.Errorf("SLIPWAY_STREAMED_PUSH %q is neither on nor off", sp)
	}
	if gc := get("SLIPWAY_GIT_CACHE_BYTES", "4g"); !strings.EqualFold(gc, "off") {
		if c.GitCacheBytes, err = cgroup.ParseBytes(gc); err != nil || c.GitCacheBytes <= 0 {
			return Config{}, fmt.Errorf("SLIPWAY_GIT_CACHE_BYTES %q is not a positive size such as 4g or 512m, or off", gc)
		}
	}
	if c.DeliveryRetention, err = ParseDays(get("SLIPWAY_DELIVERY_RETENTION", DefaultDeliveryRetention)); err != nil || c.DeliveryRetention <= 0 {
		return Config{}, fmt.Errorf("SLIPWAY_DELIVERY_RETENTION %q is not a positive duration such as 90d or 2160h", getenv("SLIPWAY_DELIVERY_RETENTION"))
	}
	c.RegistryTokenKey = get("SLIPWAY_REGISTRY_TOKEN_KEY", filepath.Join(home, "registry-token.key"))
	c.RegistryTokenHosts = get("SLIPWAY_REGISTRY_TOKEN_HOSTS", c.Registry)
	if c.MaxBuildTimeout, err = time.ParseDuration(get("SLIPWAY_MAX_BUILD_TIMEOUT", DefaultMaxBuildTimeout)); err != nil || c.MaxBuildTimeout <= 0 {
		return Config{}, fmt.Errorf("SLIPWAY_MAX_BUILD_TIMEOUT %q is not a positive duration such as 2h", getenv("SLIPWAY_MAX_BUILD_TIMEOUT"))
	}
	if c.NamespaceMaxRunning, err = strconv.Atoi(get("SLIPWAY_NAMESPACE_MAX_RUNNING", "4")); err != nil || c.NamespaceMaxRunning < 1 {
		return Config{}, fmt.Errorf("SLIPWAY_NAMESPACE_MAX_RUNNING %q is not a positive number", getenv("SLIPWAY_NAMESPACE_MAX_RUNNING"))
	}
	c.BuildFrontends = []string{} // "none": only the built-in frontend
	for _, f := range strings.Split(get("SLIPWAY_BUILD_FRONTENDS", "docker.io/docker/dockerfile:*,docker.io/docker/dockerfile-upstream:*"), ",") {
		if f = strings.TrimSpace(f); f != "" && !strings.EqualFold(f, "none") {
			c.BuildFrontends = append(c.BuildFrontends, f)
		}
	}
	if c.BuildLimits, err = cgroup.LimitsFromEnv(getenv); err != nil {
		return Config{}, err
	}
	c.BuildCgroup = get("SLIPWAY_BUILD_CGROUP", "")
	c.WorkerMetricsAddr = get("SLIPWAY_WORKER_METRICS_ADDR", "127.0.0.1:9090")
	if strings.EqualFold(c.WorkerMetricsAddr, "off") {
		c.WorkerMetricsAddr = ""
	}
	switch iso := strings.ToLower(get("SLIPWAY_BUILD_ISOLATION", "on")); iso {
	case "on":
		c.BuildIsolation = true
	case "off":
	default:
		return Config{}, fmt.Errorf("SLIPWAY_BUILD_ISOLATION %q is neither on nor off", iso)
	}
	c.BuildBridge = get("SLIPWAY_BUILD_BRIDGE", "")
	switch p := strings.ToLower(get("SLIPWAY_NOTIFY_PRIVATE", "deny")); p {
	case "deny":
	case "allow":
		c.NotifyPrivate = true
	default:
		return Config{}, fmt.Errorf("SLIPWAY_NOTIFY_PRIVATE %q is neither deny nor allow", p)
	}
	switch who := strings.ToLower(get("SLIPWAY_NAMESPACE_CREATORS", CreatorsAnyone)); who {
	case CreatorsAnyone, CreatorsAdmin:
		c.NamespaceCreators = who
	default:
		return Config{}, fmt.Errorf("SLIPWAY_NAMESPACE_CREATORS %q is neither %s nor %s", who, CreatorsAnyone, CreatorsAdmin)
	}
	positive := func(key, def string) (int, error) {
		n, err := strconv.Atoi(get(key, def))
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s %q is not a positive number", key, getenv(key))
		}
		return n, nil
	}
	if c.WebhookConcurrency, err = positive("SLIPWAY_WEBHOOK_CONCURRENCY", "16"); err != nil {
		return Config{}, err
	}
	mib, err := positive("SLIPWAY_WEBHOOK_BUFFER_MIB", "64")
	if err != nil {
		return Config{}, err
	}
	if mib < MaxWebhookBody>>20 {
		return Config{}, fmt.Errorf("SLIPWAY_WEBHOOK_BUFFER_MIB %d is less than one largest delivery (%d MiB)", mib, MaxWebhookBody>>20)
	}
	c.WebhookBuffer = int64(mib) << 20
	if c.LogFollowersPerUser, err = positive("SLIPWAY_LOG_FOLLOWERS_PER_USER", "8"); err != nil {
		return Config{}, err
	}
	idle, err := time.ParseDuration(get("SLIPWAY_LOG_FOLLOW_IDLE", "10m"))
	if err != nil || idle <= 0 {
		return Config{}, fmt.Errorf("SLIPWAY_LOG_FOLLOW_IDLE %q is not a positive duration (such as 10m)", getenv("SLIPWAY_LOG_FOLLOW_IDLE"))
	}
	c.LogFollowIdle = idle
	c.TemporalTLSCert = get("SLIPWAY_TEMPORAL_TLS_CERT", "")
	c.TemporalTLSKey = get("SLIPWAY_TEMPORAL_TLS_KEY", "")
	c.TemporalTLSCA = get("SLIPWAY_TEMPORAL_TLS_CA", "")
	c.TemporalTLSServerName = get("SLIPWAY_TEMPORAL_TLS_SERVER_NAME", "")
	c.TemporalAPIKey = Secret(get("SLIPWAY_TEMPORAL_API_KEY", ""))
	if (c.TemporalTLSCert == "") != (c.TemporalTLSKey == "") {
		return Config{}, fmt.Errorf("SLIPWAY_TEMPORAL_TLS_CERT and SLIPWAY_TEMPORAL_TLS_KEY go together: set both or neither")
	}
	return c, nil
}

// TokenHosts are the registry names of RegistryTokenHosts.
func (c Config) TokenHosts() []string {
	var out []string
	for _, h := range strings.Split(c.RegistryTokenHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// DefaultMaxBuildTimeout is the longest build timeout unless the operator says otherwise.
const DefaultMaxBuildTimeout = "3h"

// OAuthApp is an OAuth application registered with a provider.
type OAuthApp struct {
	ClientID     string
	ClientSecret string
}

// OAuthCallback is the callback URL of provider's OAuth app.
func (c Config) OAuthCallback(provider string) string {
	base := c.OAuthCallbackURL
	if base == "" {
		base = c.GatewayURL + "/oauth/callback"
	}
	return base + "/" + provider
}

// OAuth2 is provider's OAuth app as golang.org/x/oauth2 takes it, on the provider's web host
// (GitHubURL, GitLabURL), with the scopes a connected account needs (private clones, webhooks,
// commit statuses) and the callback URL; nil when the app is not configured. The console
// authorizes with it; the gateway and the worker refresh expiring tokens with it.
func (c Config) OAuth2(provider string) *oauth2.Config {
	switch provider {
	case "github":
		if c.GitHubOAuth.ClientID == "" {
			return nil
		}
		return &oauth2.Config{ClientID: c.GitHubOAuth.ClientID, ClientSecret: c.GitHubOAuth.ClientSecret,
			Endpoint:    oauth2.Endpoint{AuthURL: c.GitHubURL + "/login/oauth/authorize", TokenURL: c.GitHubURL + "/login/oauth/access_token"},
			RedirectURL: c.OAuthCallback(provider), Scopes: []string{"repo", "admin:repo_hook"}}
	case "gitlab":
		if c.GitLabOAuth.ClientID == "" {
			return nil
		}
		return &oauth2.Config{ClientID: c.GitLabOAuth.ClientID, ClientSecret: c.GitLabOAuth.ClientSecret,
			Endpoint:    oauth2.Endpoint{AuthURL: c.GitLabURL + "/oauth/authorize", TokenURL: c.GitLabURL + "/oauth/token"},
			RedirectURL: c.OAuthCallback(provider), Scopes: []string{"api"}}
	}
	return nil
}

// OAuthApps are the configured OAuth apps by provider (see OAuth2).
func (c Config) OAuthApps() map[string]*oauth2.Config {
	out := map[string]*oauth2.Config{}
	for _, p := range []string{"github", "gitlab"} {
		if conf := c.OAuth2(p); conf != nil {
			out[p] = conf
		}
	}
	return out
}

// CloneBaseURLs maps each provider to the base its clone URLs are built from.
func (c Config) CloneBaseURLs() map[string]string {
	return map[string]string{"github": c.GitHubURL, "gitlab": c.GitLabURL}
}

// ProviderAPIURLs maps each provider to its API base URL (client-go adds GitLab's /api/v4).
func (c Config) ProviderAPIURLs() map[string]string {
	return map[string]string{"github": c.GitHubAPIURL, "gitlab": c.GitLabURL}
}

// LogsDir is where build logs are kept.
func (c Config) LogsDir() string { return filepath.Join(c.Home, "logs") }

// ImagesDir is where workers keep their image stores, one folder per worker process.
func (c Config) ImagesDir() string { return filepath.Join(c.Home, "images") }

// GitCacheDir is the host's Git cache, shared by the workers that share SLIPWAY_HOME.
func (c Config) GitCacheDir() string { return filepath.Join(c.Home, "gitcache") }

// WorkspacesDir is where builds check out and lay out their images.
func (c Config) WorkspacesDir() string { return filepath.Join(c.Home, "workspaces") }

// MakeHome creates SLIPWAY_HOME private to the service's user (0700), and makes an existing
// one private too: it holds the database (webhook secrets), the secret key, the admin token
// and build logs, which no other local user may read.
func (c Config) MakeHome() error {
	if err := os.MkdirAll(c.Home, 0o700); err != nil {
		return fmt.Errorf("creating SLIPWAY_HOME: %w", err)
	}
	if err := os.Chmod(c.Home, 0o700); err != nil {
		return fmt.Errorf("making SLIPWAY_HOME private: %w", err)
	}
	return nil
}

// DefaultDeliveryRetention is how long webhook events are remembered unless configured.
const DefaultDeliveryRetention = "90d"

// ParseDays is time.ParseDuration that also takes a whole number of days, "90d".
func ParseDays(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
