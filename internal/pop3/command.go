package pop3

import (
	"strings"
)

// A command line is a keyword, then arguments separated by single spaces
// (RFC 1939 §3). Keywords are case-insensitive. Parsing is split from
// running so that it can be fuzzed alone.

// parseError is the reply to a line or an argument list that does not
// parse.
type parseError string

// parseCommand splits a command line (without its CRLF) into its keyword,
// upper-cased, and the rest. PASS keeps its argument as it is, spaces and
// 8-bit octets included (RFC 1939 §7 lets a password contain spaces;
// passwords may be UTF-8); every other command must be printable ASCII.
func parseCommand(line string) (verb, arg string, perr parseError) {
	if line == "" || line[0] == ' ' || line[0] == '\t' {
		return "", "", errUnknownCommand
	}
	verb, arg, _ = strings.Cut(line, " ")
	if len(verb) > 16 {
		return "", "", errUnknownCommand
	}
	verb = strings.ToUpper(verb)
	if verb == "PASS" {
		for i := 0; i < len(arg); i++ {
			if c := arg[i]; c < 0x20 || c == 0x7f {
				return "", "", errNotASCII
			}
		}
		return verb, arg, ""
	}
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < 0x20 || c > 0x7e {
			return "", "", errNotASCII
		}
	}
	return verb, strings.TrimSpace(arg), ""
}

// maxNumber bounds message numbers and line counts (Exchange parses them
// as 32-bit integers; a longer number is a bad argument, not an overflow).
const maxNumber = 1<<31 - 1

// parseNumber reads a decimal number of at most maxNumber, digits only.
func parseNumber(s string) (int, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > maxNumber {
		return 0, false
	}
	return n, true
}

// parseMessageArgs reads the arguments of LIST, UIDL (one optional
// message number), RETR, DELE (one) and TOP (a message number and a line
// count), as Exchange does: a wrong count of arguments is "Protocol error.
// 16", a message number under 1 or a negative line count "Protocol error.
// 14". msg is 0 when the optional number is absent.
func parseMessageArgs(arg string, count int, optional bool) (msg, lines int, perr parseError) {
	if arg == "" {
		if optional {
			return 0, 0, ""
		}
		return 0, 0, errArgumentCount
	}
	fields := strings.Split(arg, " ")
	if len(fields) != count {
		return 0, 0, errArgumentCount
	}
	msg, ok := parseNumber(fields[0])
	if !ok || msg < 1 {
		return 0, 0, errBadArgument
	}
	if count == 2 {
		if lines, ok = parseNumber(fields[1]); !ok {
			return 0, 0, errBadArgument
		}
	}
	return msg, lines, ""
}
