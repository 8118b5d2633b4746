package cmdlet

import (
	"slices"
	"strings"
)

// Complete lists what the word that ends at pos in line may be completed
// to, as the interactive shell's Tab key does in PowerShell: a cmdlet's
// name where a command starts, one of the command's parameters after "-".
// start is where the word begins; candidates replace line[start:pos] and
// are sorted. Nothing is completed inside a quoted string.
func (r *Registry) Complete(line string, pos int) (start int, candidates []string) {
	if pos < 0 || pos > len(line) {
		return pos, nil
	}
	before := line[:pos]
	if strings.Count(before, "'")%2 == 1 || strings.Count(before, `"`)%2 == 1 {
		return pos, nil
	}
	start = strings.LastIndexAny(before, " \t|;{}()=,") + 1
	word := before[start:]
	// The command is the first word of the pipeline element the word is in.
	segStart := strings.LastIndexAny(before[:start], "|;{(=") + 1
	fields := strings.Fields(before[segStart:start])

	if strings.HasPrefix(word, "-") {
		if len(fields) == 0 {
			return start, nil
		}
		spec, ok := r.Lookup(fields[0])
		if !ok {
			return start, nil
		}
		for _, p := range spec.bindable() {
			if hasPrefixFold(p.Name, word[1:]) {
				candidates = append(candidates, "-"+p.Name)
			}
		}
		slices.Sort(candidates)
		return start, candidates
	}
	if len(fields) > 0 || word == "" || strings.HasPrefix(word, "$") {
		return start, nil // an argument, not a command
	}
	for _, n := range r.Names() {
		if hasPrefixFold(n, word) {
			candidates = append(candidates, n)
		}
	}
	return start, candidates
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
