package build

import "testing"

func TestCacheRef(t *testing.T) {
	for _, tt := range []struct{ cache, want string }{
		{"", "127.0.0.1:5000/demo/app:buildcache"},
		{CacheOff, ""},
		{"127.0.0.1:5000/cache/shared:app", "127.0.0.1:5000/cache/shared:app"},
	} {
		in := Input{Image: "127.0.0.1:5000/demo/app"}
		in.Cache = tt.cache
		if got := in.CacheRef(); got != tt.want {
			t.Errorf("cache %q: ref %q, want %q", tt.cache, got, tt.want)
		}
	}
}
