package gateway

import (
	"fmt"
	"math"
)

// minAdminTokenLen and minAdminBitsPerChar are what a site admin token set by hand must reach:
// tokens are kept as plain SHA-256 hashes (fast to check on every call), which only protects
// tokens too random to guess. 32 random hex characters (openssl rand -hex 16) carry 128 bits
// and show about 3.6 bits per character; a word or a keyboard run shows less than 3.
const (
	minAdminTokenLen    = 32
	minAdminBitsPerChar = 3.0
)

// checkAdminToken refuses a site admin token that is short or plainly not random. The
// estimate is the token's empirical Shannon entropy (bits per character times its length), which
// a repeated word or a run of one character fails and random hex or base64 passes. The error
// never holds the token.
func checkAdminToken(token string) error {
	n := len([]rune(token))
	if n < minAdminTokenLen {
		return fmt.Errorf("is %d characters long, want at least %d random ones (make one with: openssl rand -hex 32)", n, minAdminTokenLen)
	}
	if bits := bitsPerChar(token); bits < minAdminBitsPerChar || periodic(token) {
		return fmt.Errorf("is not random enough (repeated characters or words); make one with: openssl rand -hex 32")
	}
	return nil
}

// periodic reports whether s is a shorter string repeated (a word typed again and again).
func periodic(s string) bool {
	for p := 1; p <= len(s)/2; p++ {
		if s[p:] == s[:len(s)-p] {
			return true
		}
	}
	return false
}

// bitsPerChar is the empirical Shannon entropy of s's characters.
func bitsPerChar(s string) float64 {
	counts := map[rune]int{}
	n := 0
	for _, r := range s {
		counts[r]++
		n++
	}
	var perChar float64
	for _, c := range counts {
		p := float64(c) / float64(n)
		perChar -= p * math.Log2(p)
	}
	return perChar
}
