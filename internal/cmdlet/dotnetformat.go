package cmdlet

import (
	"crypto/rand"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

func cryptoRand(b []byte) (int, error) { return rand.Read(b) }

// formatNumber formats a number with a .NET format string, as -f and
// ToString do in the en-US culture: the standard formats N (group
// separators), F (fixed), D (integer digits), P (percent), X (hex), E
// (exponent), G, C (dollars), and custom patterns such as "0.00" or
// "#,##0".
func formatNumber(v Value, f string) (string, error) {
	fl := toFloat(v)
	_, isInt := v.(int64)
	if len(f) >= 1 && len(f) <= 3 && strings.ContainsRune("NnFfDdPpXxEeGgCc", rune(f[0])) {
		prec := -1
		if len(f) > 1 {
			n, err := strconv.Atoi(f[1:])
			if err != nil {
				return customNumber(fl, f), nil
			}
			prec = n
		}
		def := func(d int) int {
			if prec < 0 {
				return d
			}
			return prec
		}
		switch f[0] {
		case 'N', 'n':
			return groupDigits(strconv.FormatFloat(roundHalfAway(fl, def(2)), 'f', def(2), 64)), nil
		case 'F', 'f':
			return strconv.FormatFloat(roundHalfAway(fl, def(2)), 'f', def(2), 64), nil
		case 'C', 'c':
			s := groupDigits(strconv.FormatFloat(math.Abs(roundHalfAway(fl, def(2))), 'f', def(2), 64))
			if fl < 0 {
				return "($" + s + ")", nil
			}
			return "$" + s, nil
		case 'P', 'p':
			return groupDigits(strconv.FormatFloat(roundHalfAway(fl*100, def(2)), 'f', def(2), 64)) + "%", nil
		case 'D', 'd':
			if !isInt {
				return "", fmt.Errorf("Error formatting a string: Format specifier was invalid..")
			}
			n := v.(int64)
			s := strconv.FormatInt(absInt(n), 10)
			if len(s) < prec {
				s = strings.Repeat("0", prec-len(s)) + s
			}
			if n < 0 {
				s = "-" + s
			}
			return s, nil
		case 'X', 'x':
			if !isInt {
				return "", fmt.Errorf("Error formatting a string: Format specifier was invalid..")
			}
			s := strconv.FormatUint(uint64(v.(int64)), 16)
			if v.(int64) >= math.MinInt32 && v.(int64) < 0 {
				s = strconv.FormatUint(uint64(uint32(v.(int64))), 16)
			}
			if len(s) < prec {
				s = strings.Repeat("0", prec-len(s)) + s
			}
			if f[0] == 'X' {
				s = strings.ToUpper(s)
			}
			return s, nil
		case 'E', 'e':
			s := strconv.FormatFloat(fl, 'e', def(6), 64)
			mant, exp, _ := strings.Cut(s, "e")
			sign := exp[0]
			digits := strings.TrimLeft(exp[1:], "0")
			for len(digits) < 3 {
				digits = "0" + digits
			}
			out := mant + "e" + string(sign) + digits
			if f[0] == 'E' {
				out = strings.ToUpper(out)
			}
			return out, nil
		case 'G', 'g':
			return toString(v), nil
		}
	}
	return customNumber(fl, f), nil
}

func absInt(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// roundHalfAway rounds as .NET's number formatting does: halves away
// from zero.
func roundHalfAway(f float64, digits int) float64 {
	if digits > 15 || math.IsInf(f, 0) || math.IsNaN(f) {
		return f
	}
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}

// groupDigits puts en-US group separators in a formatted number.
func groupDigits(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if hasFrac {
		out += "." + frac
	}
	if neg && strings.Trim(out, "0.,") != "" {
		out = "-" + out
	}
	return out
}

// customNumber applies a custom numeric format: 0 and # digit places, a
// '.' for the decimals, ',' for grouping, '%' to multiply by 100, and
// literal text around them.
func customNumber(f float64, format string) string {
	first := strings.IndexAny(format, "0#")
	if first < 0 {
		return format
	}
	last := strings.LastIndexAny(format, "0#.,")
	prefix, pattern, suffix := format[:first], format[first:last+1], format[last+1:]
	if strings.Contains(prefix+suffix, "%") {
		f *= 100
	}
	intPat, fracPat, _ := strings.Cut(pattern, ".")
	group := strings.Contains(intPat, ",")
	minInt := strings.Count(intPat, "0")
	minFrac, maxFrac := strings.Count(fracPat, "0"), strings.Count(fracPat, "0")+strings.Count(fracPat, "#")
	s := strconv.FormatFloat(roundHalfAway(math.Abs(f), maxFrac), 'f', maxFrac, 64)
	ip, fp, _ := strings.Cut(s, ".")
	for len(fp) > minFrac && strings.HasSuffix(fp, "0") {
		fp = fp[:len(fp)-1]
	}
	if ip == "0" && minInt == 0 {
		ip = ""
	}
	for len(ip) < minInt {
		ip = "0" + ip
	}
	if group {
		ip = groupDigits(ip)
	}
	out := ip
	if fp != "" {
		out += "." + fp
	}
	if f < 0 && strings.Trim(out, "0.,") != "" {
		out = "-" + out
	}
	return prefix + out + suffix
}

var (
	dayNames   = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	monthNames = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
)

// formatDate formats a date with a .NET format string in the en-US
// culture: the standard formats (d, D, t, T, f, F, g, G, s, u, o, M, Y)
// and custom ones (yyyy-MM-dd HH:mm:ss, dddd, MMM, tt, 'literal'...).
func formatDate(t time.Time, f string) string {
	standard := map[string]string{
		"d": "M/d/yyyy", "D": "dddd, MMMM d, yyyy", "t": "h:mm tt", "T": "h:mm:ss tt",
		"f": "dddd, MMMM d, yyyy h:mm tt", "F": "dddd, MMMM d, yyyy h:mm:ss tt",
		"g": "M/d/yyyy h:mm tt", "G": "M/d/yyyy h:mm:ss tt", "s": "yyyy-MM-ddTHH:mm:ss",
		"M": "MMMM d", "m": "MMMM d", "Y": "MMMM yyyy", "y": "MMMM yyyy",
	}
	switch f {
	case "o", "O":
		return t.Format("2006-01-02T15:04:05.0000000Z07:00")
	case "u":
		return t.UTC().Format("2006-01-02 15:04:05Z")
	case "U":
		return formatDate(t.UTC(), "F")
	case "r", "R":
		return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")
	}
	if s, ok := standard[f]; ok {
		f = s
	}
	var b strings.Builder
	run := func(i int) int {
		j := i
		for j < len(f) && f[j] == f[i] {
			j++
		}
		return j - i
	}
	for i := 0; i < len(f); {
		c := f[i]
		n := run(i)
		switch c {
		case 'y':
			switch {
			case n <= 2:
				fmt.Fprintf(&b, "%0*d", n, t.Year()%100)
			default:
				fmt.Fprintf(&b, "%0*d", n, t.Year())
			}
		case 'M':
			switch {
			case n >= 4:
				b.WriteString(monthNames[t.Month()-1])
			case n == 3:
				b.WriteString(monthNames[t.Month()-1][:3])
			default:
				fmt.Fprintf(&b, "%0*d", n, int(t.Month()))
			}
		case 'd':
			switch {
			case n >= 4:
				b.WriteString(dayNames[t.Weekday()])
			case n == 3:
				b.WriteString(dayNames[t.Weekday()][:3])
			default:
				fmt.Fprintf(&b, "%0*d", n, t.Day())
			}
		case 'H':
			fmt.Fprintf(&b, "%0*d", min(n, 2), t.Hour())
		case 'h':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			fmt.Fprintf(&b, "%0*d", min(n, 2), h)
		case 'm':
			fmt.Fprintf(&b, "%0*d", min(n, 2), t.Minute())
		case 's':
			fmt.Fprintf(&b, "%0*d", min(n, 2), t.Second())
		case 'f', 'F':
			digits := fmt.Sprintf("%09d", t.Nanosecond())[:min(n, 7)]
			if c == 'F' {
				digits = strings.TrimRight(digits, "0")
			}
			b.WriteString(digits)
		case 't':
			ampm := "AM"
			if t.Hour() >= 12 {
				ampm = "PM"
			}
			if n == 1 {
				ampm = ampm[:1]
			}
			b.WriteString(ampm)
		case 'z':
			_, off := t.Zone()
			sign := '+'
			if off < 0 {
				sign, off = '-', -off
			}
			switch n {
			case 1:
				fmt.Fprintf(&b, "%c%d", sign, off/3600)
			case 2:
				fmt.Fprintf(&b, "%c%02d", sign, off/3600)
			default:
				fmt.Fprintf(&b, "%c%02d:%02d", sign, off/3600, off%3600/60)
			}
		case 'K':
			if t.Location() == time.UTC {
				b.WriteString("Z")
			} else {
				b.WriteString(t.Format("-07:00"))
			}
			n = 1
		case '\'', '"':
			end := strings.IndexByte(f[i+1:], c)
			if end < 0 {
				b.WriteString(f[i+1:])
				return b.String()
			}
			b.WriteString(f[i+1 : i+1+end])
			n = end + 2
		case '\\':
			if i+1 < len(f) {
				b.WriteByte(f[i+1])
			}
			n = 2
		default:
			b.WriteString(f[i : i+n])
		}
		i += n
	}
	return b.String()
}

// dateLayouts are the forms a date string may take where PowerShell
// converts one to a DateTime: ISO 8601 and the en-US/invariant forms.
var dateLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02",
	"1/2/2006 15:04:05", "1/2/2006 15:04", "1/2/2006 3:04:05 PM", "1/2/2006 3:04 PM", "1/2/2006",
	"2006/01/02", "2006/01/02 15:04:05", "January 2, 2006", "Monday, January 2, 2006 3:04:05 PM", "2 January 2006", "Jan 2 2006", "Jan 2, 2006"}

// parseDateString reads a date as [datetime]"..." does, in local time
// unless the text names a zone.
func parseDateString(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range dateLayouts {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
