package cmdlet

import "strings"

// ContainsWildcard reports whether s is a PowerShell wildcard pattern: it
// contains *, ? or [.
func ContainsWildcard(s string) bool {
	return strings.ContainsAny(s, "*?[")
}

// MatchWildcard matches s against a PowerShell wildcard pattern, ignoring
// case as PowerShell does: * matches any run of characters, ? any one,
// [abc] and [a-z] one of a set, and a backtick makes the next character
// literal. A [ without its ] is literal.
func MatchWildcard(pattern, s string) bool {
	p := []rune(strings.ToLower(pattern))
	str := []rune(strings.ToLower(s))
	// Greedy matching that backtracks to the last *: linear for patterns
	// with one *, never exponential.
	pi, si := 0, 0
	star, starSi := -1, 0
	for si < len(str) {
		if pi < len(p) && p[pi] == '*' {
			star, starSi = pi, si
			pi++
			continue
		}
		if pi < len(p) {
			if width, ok := matchOne(p[pi:], str[si]); ok {
				pi += width
				si++
				continue
			}
		}
		if star < 0 {
			return false
		}
		starSi++
		pi, si = star+1, starSi
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchOne matches one character c against the start of pattern p,
// returning how many pattern runes the match used.
func matchOne(p []rune, c rune) (int, bool) {
	switch p[0] {
	case '?':
		return 1, true
	case '`':
		if len(p) > 1 {
			return 2, p[1] == c
		}
	case '[':
		for end := 2; end < len(p); end++ {
			if p[end] == ']' {
				return end + 1, inSet(p[1:end], c)
			}
		}
	}
	return 1, p[0] == c
}

// inSet reports whether c is in a bracket set such as abc or a-z.
func inSet(set []rune, c rune) bool {
	for i := 0; i < len(set); i++ {
		if i+2 < len(set) && set[i+1] == '-' {
			if set[i] <= c && c <= set[i+2] {
				return true
			}
			i += 2
			continue
		}
		if set[i] == c {
			return true
		}
	}
	return false
}
