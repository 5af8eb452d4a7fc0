package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/cgroup"
)

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(Config) string
		wantErr string
	}{
		{
			name: "defaults with only SLIPWAY_HOME set",
			env:  map[string]string{"SLIPWAY_HOME": "/srv/slipway"},
			check: func(c Config) string {
				want := Config{
					Home: "/srv/slipway", TemporalAddress: "127.0.0.1:7233", TemporalNamespace: "default",
					TemporalUIURL: "http://127.0.0.1:8233", TaskQueue: "docker-builder",
					BuildkitAddr: "unix:///srv/slipway/buildkitd.sock", Registry: "127.0.0.1:5000",
					DatabaseURL: "/srv/slipway/slipway.db", GatewayAddr: "127.0.0.1:8080",
					GatewayURL: "http://127.0.0.1:8080", GitHubURL: "https://github.com",
					GitHubAPIURL: "https://api.github.com", GitLabURL: "https://gitlab.com", MaxConcurrentBuilds: 2,
					WorkerMetricsAddr: "127.0.0.1:9090", ImageStoreTTL: 6 * time.Hour, DeliveryRetention: 90 * 24 * time.Hour,
					GitCacheBytes: 4 << 30, NamespaceCreators: CreatorsAnyone, BuildIsolation: true,
					RegistryTokenKey: "/srv/slipway/registry-token.key", RegistryTokenHosts: "127.0.0.1:5000",
					MaxBuildTimeout: 3 * time.Hour, NamespaceMaxRunning: 4,
					BuildFrontends:     []string{"docker.io/docker/dockerfile:*", "docker.io/docker/dockerfile-upstream:*"},
					BuildLimits:        cgroup.Limits{MemoryBytes: 2 << 30, Pids: 1024, CPUs: 1},
					WebhookConcurrency: 16, WebhookBuffer: 64 << 20, LogFollowersPerUser: 8, LogFollowIdle: 10 * time.Minute,
				}
				if !reflect.DeepEqual(c, want) {
					return "got " + sprint(c)
				}
				return ""
			},
		},
		{
			name: "only the site admin creates namespaces",
			env:  map[string]string{"SLIPWAY_HOME": "/h", "SLIPWAY_NAMESPACE_CREATORS": "Admin"},
			check: func(c Config) string {
				if c.NamespaceCreators != CreatorsAdmin {
					return c.NamespaceCreators
				}
				return ""
			},
		},
		{
			name:    "namespace creators must be anyone or admin",
			env:     map[string]string{"SLIPWAY_HOME": "/h", "SLIPWAY_NAMESPACE_CREATORS": "members"},
			wantErr: "SLIPWAY_NAMESPACE_CREATORS",
		},
		{
			name: "home is made absolute",
			env:  map[string]string{"SLIPWAY_HOME": "rel/home"},
			check: func(c Config) string {
				if !filepath.IsAbs(c.Home) || !strings.HasSuffix(c.Home, "rel/home") {
					return c.Home
				}
				return ""
			},
		},
		{
			name: "overrides, trailing slashes trimmed",
			env: map[string]string{"SLIPWAY_HOME": "/h", "SLIPWAY_GITHUB_URL": "https://ghe.example/", "SLIPWAY_GATEWAY_URL": "https://slipway.example/",
				"SLIPWAY_DATABASE_URL": "postgres://u@db/slipway", "SLIPWAY_MAX_CONCURRENT_BUILDS": "4"},
			check: func(c Config) string {
				if c.GitHubURL != "https://ghe.example" || c.GatewayURL != "https://slipway.example" ||
					c.DatabaseURL != "postgres://u@db/slipway" || c.MaxConcurrentBuilds != 4 ||
					c.CloneBaseURLs()["github"] != "https://ghe.example" {
					return sprint(c)
				}
				return ""
			},
		},
		{
			name: "image store ttl",
			env:  map[string]string{"SLIPWAY_IMAGE_STORE_TTL": "90m"},
			check: func(c Config) string {
				if c.ImageStoreTTL != 90*time.Minute {
					return c.ImageStoreTTL.String()
				}
				return ""
			},
		},
		{
			name: "delivery retention in days",
			env:  map[string]string{"SLIPWAY_DELIVERY_RETENTION": "120d"},
			check: func(c Config) string {
				if c.DeliveryRetention != 120*24*time.Hour {
					return c.DeliveryRetention.String()
				}
				return ""
			},
		},
		{
			name: "image store off",
			env:  map[string]string{"SLIPWAY_IMAGE_STORE_TTL": "off"},
			check: func(c Config) string {
				if c.ImageStoreTTL != 0 {
					return c.ImageStoreTTL.String()
				}
				return ""
			},
		},
		{
			name: "streamed push on",
			env:  map[string]string{"SLIPWAY_STREAMED_PUSH": "On"},
			check: func(c Config) string {
				if !c.StreamedPush {
					return "streamed push off"
				}
				return ""
			},
		},
		{
			name: "git cache size",
			env:  map[string]string{"SLIPWAY_GIT_CACHE_BYTES": "512m"},
			check: func(c Config) string {
				if c.GitCacheBytes != 512<<20 {
					return fmt.Sprint(c.GitCacheBytes)
				}
				return ""
			},
		},
		{
			name: "git cache off",
			env:  map[string]string{"SLIPWAY_GIT_CACHE_BYTES": "Off"},
			check: func(c Config) string {
				if c.GitCacheBytes != 0 {
					return fmt.Sprint(c.GitCacheBytes)
				}
				return ""
			},
		},
		{name: "git cache size not a size", env: map[string]string{"SLIPWAY_GIT_CACHE_BYTES": "lots"}, wantErr: "SLIPWAY_GIT_CACHE_BYTES"},
		{name: "git cache size zero", env: map[string]string{"SLIPWAY_GIT_CACHE_BYTES": "0"}, wantErr: "SLIPWAY_GIT_CACHE_BYTES"},
		{
			name: "build isolation off, bridge named",
			env:  map[string]string{"SLIPWAY_BUILD_ISOLATION": "OFF", "SLIPWAY_BUILD_BRIDGE": "slw0"},
			check: func(c Config) string {
				if c.BuildIsolation || c.BuildBridge != "slw0" {
					return sprint(c)
				}
				return ""
			},
		},
		{name: "build isolation neither on nor off", env: map[string]string{"SLIPWAY_BUILD_ISOLATION": "maybe"}, wantErr: "SLIPWAY_BUILD_ISOLATION"},
		{name: "streamed push neither on nor off", env: map[string]string{"SLIPWAY_STREAMED_PUSH": "yes"}, wantErr: "SLIPWAY_STREAMED_PUSH"},
		{name: "notifications to private addresses allowed", env: map[string]string{"SLIPWAY_NOTIFY_PRIVATE": "Allow"},
			check: func(c Config) string {
				if !c.NotifyPrivate {
					return "NotifyPrivate off"
				}
				return ""
			}},
		{name: "notify private neither deny nor allow", env: map[string]string{"SLIPWAY_NOTIFY_PRIVATE": "yes"}, wantErr: "SLIPWAY_NOTIFY_PRIVATE"},
		{name: "image store ttl not a duration", env: map[string]string{"SLIPWAY_IMAGE_STORE_TTL": "a while"}, wantErr: "SLIPWAY_IMAGE_STORE_TTL"},
		{name: "delivery retention not a duration", env: map[string]string{"SLIPWAY_DELIVERY_RETENTION": "forever"}, wantErr: "SLIPWAY_DELIVERY_RETENTION"},
		{name: "delivery retention zero", env: map[string]string{"SLIPWAY_DELIVERY_RETENTION": "0d"}, wantErr: "SLIPWAY_DELIVERY_RETENTION"},
		{name: "image store ttl zero", env: map[string]string{"SLIPWAY_IMAGE_STORE_TTL": "0s"}, wantErr: "not a positive duration"},
		{
			name: "worker metrics off",
			env:  map[string]string{"SLIPWAY_WORKER_METRICS_ADDR": "off"},
			check: func(c Config) string {
				if c.WorkerMetricsAddr != "" {
					return "WorkerMetricsAddr = " + c.WorkerMetricsAddr
				}
				return ""
			},
		},
		{
			name: "temporal API key is never printed",
			env:  map[string]string{"SLIPWAY_TEMPORAL_API_KEY": "sekrit-key"},
			check: func(c Config) string {
				if string(c.TemporalAPIKey) != "sekrit-key" {
					return "key not read"
				}
				if s := sprint(c) + fmt.Sprintf("%v %#v %s", c, c, c.TemporalAPIKey); strings.Contains(s, "sekrit") {
					return "the key shows in " + s
				}
				return ""
			},
		},
		{name: "TLS cert without key", env: map[string]string{"SLIPWAY_TEMPORAL_TLS_CERT": "/c.pem"}, wantErr: "SLIPWAY_TEMPORAL_TLS_KEY"},
		{
			name: "build limits",
			env: map[string]string{"SLIPWAY_MAX_BUILD_TIMEOUT": "90m", "SLIPWAY_NAMESPACE_MAX_RUNNING": "2",
				"SLIPWAY_BUILD_FRONTENDS": " ghcr.io/acme/frontend:* ,docker/dockerfile:1", "SLIPWAY_BUILD_MEMORY": "512m",
				"SLIPWAY_BUILD_PIDS": "100", "SLIPWAY_BUILD_CPUS": "0.5", "SLIPWAY_BUILD_CGROUP": "slipway-x"},
			check: func(c Config) string {
				if c.MaxBuildTimeout != 90*time.Minute || c.NamespaceMaxRunning != 2 ||
					!reflect.DeepEqual(c.BuildFrontends, []string{"ghcr.io/acme/frontend:*", "docker/dockerfile:1"}) ||
					c.BuildLimits != (cgroup.Limits{MemoryBytes: 512 << 20, Pids: 100, CPUs: 0.5}) || c.BuildCgroup != "slipway-x" {
					return sprint(c)
				}
				return ""
			},
		},
		{
			name: "hostile-traffic limits",
			env: map[string]string{"SLIPWAY_WEBHOOK_CONCURRENCY": "4", "SLIPWAY_WEBHOOK_BUFFER_MIB": "100",
				"SLIPWAY_LOG_FOLLOWERS_PER_USER": "2", "SLIPWAY_LOG_FOLLOW_IDLE": "90s"},
			check: func(c Config) string {
				if c.WebhookConcurrency != 4 || c.WebhookBuffer != 100<<20 || c.LogFollowersPerUser != 2 || c.LogFollowIdle != 90*time.Second {
					return sprint(c)
				}
				return ""
			},
		},
		{
			name: "only the built-in frontend",
			env:  map[string]string{"SLIPWAY_BUILD_FRONTENDS": "none"},
			check: func(c Config) string {
				if c.BuildFrontends == nil || len(c.BuildFrontends) != 0 {
					return fmt.Sprint(c.BuildFrontends)
				}
				return ""
			},
		},
		{name: "max timeout not a duration", env: map[string]string{"SLIPWAY_MAX_BUILD_TIMEOUT": "long"}, wantErr: "SLIPWAY_MAX_BUILD_TIMEOUT"},
		{name: "namespace slots zero", env: map[string]string{"SLIPWAY_NAMESPACE_MAX_RUNNING": "0"}, wantErr: "SLIPWAY_NAMESPACE_MAX_RUNNING"},
		{name: "memory not a size", env: map[string]string{"SLIPWAY_BUILD_MEMORY": "lots"}, wantErr: "SLIPWAY_BUILD_MEMORY"},
		{name: "memory too small", env: map[string]string{"SLIPWAY_BUILD_MEMORY": "1m"}, wantErr: "below 16m"},
		{name: "pids not a number", env: map[string]string{"SLIPWAY_BUILD_PIDS": "-3"}, wantErr: "SLIPWAY_BUILD_PIDS"},
		{name: "cpus not a number", env: map[string]string{"SLIPWAY_BUILD_CPUS": "two"}, wantErr: "SLIPWAY_BUILD_CPUS"},
		{name: "webhook concurrency zero", env: map[string]string{"SLIPWAY_WEBHOOK_CONCURRENCY": "0"}, wantErr: "SLIPWAY_WEBHOOK_CONCURRENCY"},
		{name: "webhook buffer below one delivery", env: map[string]string{"SLIPWAY_WEBHOOK_BUFFER_MIB": "10"}, wantErr: "less than one largest delivery"},
		{name: "followers not a number", env: map[string]string{"SLIPWAY_LOG_FOLLOWERS_PER_USER": "lots"}, wantErr: "SLIPWAY_LOG_FOLLOWERS_PER_USER"},
		{name: "follow idle not a duration", env: map[string]string{"SLIPWAY_LOG_FOLLOW_IDLE": "10"}, wantErr: "SLIPWAY_LOG_FOLLOW_IDLE"},
		{name: "bad concurrency", env: map[string]string{"SLIPWAY_MAX_CONCURRENT_BUILDS": "0"}, wantErr: "SLIPWAY_MAX_CONCURRENT_BUILDS"},
		{name: "concurrency not a number", env: map[string]string{"SLIPWAY_MAX_CONCURRENT_BUILDS": "many"}, wantErr: "not a positive number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.check(c); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

func sprint(c Config) string { return fmt.Sprintf("%+v", c) }

func TestMakeHomePrivate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before os.FileMode // 0: the folder does not exist yet
	}{
		{"new", 0},
		{"existing world-readable", 0o755},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			if tc.before != 0 {
				if err := os.Mkdir(home, tc.before); err != nil {
					t.Fatal(err)
				}
			}
			c := Config{Home: home}
			if err := c.MakeHome(); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(home)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("SLIPWAY_HOME has mode %o, want 700", fi.Mode().Perm())
			}
		})
	}
}
