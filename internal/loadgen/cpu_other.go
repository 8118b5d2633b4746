//go:build !unix

package loadgen

import "time"

// processCPU is not measured here: the summary reports zero.
func processCPU() time.Duration { return 0 }
