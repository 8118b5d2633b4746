package admin

import (
	"fmt"
	"strconv"
)

// Size is a byte count shown as Exchange shows a ByteQuantifiedSize:
// "35 MB (36,700,160 bytes)".
type Size int64

func (s Size) String() string {
	n := int64(s)
	unit, div := "B", int64(1)
	switch {
	case n >= 1<<30:
		unit, div = "GB", 1<<30
	case n >= 1<<20:
		unit, div = "MB", 1<<20
	case n >= 1<<10:
		unit, div = "KB", 1<<10
	}
	value := strconv.FormatFloat(float64(n)/float64(div), 'f', -1, 64)
	if n%div != 0 {
		value = strconv.FormatFloat(float64(n)/float64(div), 'f', 3, 64)
	}
	return fmt.Sprintf("%s %s (%s bytes)", value, unit, groupThousands(n))
}

func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
