// Package text is the one validator of free text the platform stores:
// election titles, candidate names, ban reasons, passwords. Both storage
// engines get the same text, so a value refused here is refused on both
// (PostgreSQL would answer a NUL byte with an error the embedded store
// never gives; a bidi override stored in a title would reorder what every
// viewer sees).
package text

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Problem describes why s cannot be stored as text: invalid UTF-8, or a
// control character (NUL, C0 and C1 controls, DEL, including newlines and
// tabs: no field here is multi-line). "" when s is fine.
func Problem(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("must not contain control characters (found %U)", r)
		}
	}
	return ""
}

// DisplayProblem is Problem for text shown to other people, which also
// refuses the bidirectional embedding, override and isolate controls
// (U+202A to U+202E, U+2066 to U+2069): they make text read in another
// order than it is stored ("Trojan Source" spoofing). The implicit marks
// (U+200E, U+200F, U+061C) stay allowed: they affect only neutral
// characters next to them.
func DisplayProblem(s string) string {
	if p := Problem(s); p != "" {
		return p
	}
	for _, r := range s {
		if isBidiControl(r) {
			return fmt.Sprintf("must not contain bidirectional override or isolate characters (found %U)", r)
		}
	}
	return ""
}

func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

// Display checks display text of 1 to max characters that is not blank.
func Display(s string, max int) string {
	switch {
	case s == "" || isBlank(s):
		return "is required"
	case utf8.RuneCountInString(s) > max:
		return fmt.Sprintf("must be at most %d characters", max)
	}
	return DisplayProblem(s)
}

func isBlank(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}
