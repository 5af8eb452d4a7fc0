package registryauth

import "time"

// SetClock makes Mint read the time from now, so a test mints tokens that have expired.
func (k *Key) SetClock(now func() time.Time) { k.now = now }
