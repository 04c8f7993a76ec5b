// Command regexcheck applies collector regexes the way otelcol-contrib does, with Go's
// own regexp package (RE2 syntax), so the bundled configs can be checked offline.
//
// Input (stdin, JSON):
//
//	{"sets": {"<name>": [{"id": "...", "regex": "...", "replacement": "...",
//	                      "mode": "replace" | "mask" | "match", "ottl": true}]},
//	 "inputs": ["text", ...]}
//
//   - mode "replace": OTTL replace_pattern: regexp.ReplaceAllString(value, replacement)
//     (the replacement uses regexp.Expand syntax: ${1}).
//   - mode "mask": redaction processor blocked_values: every match becomes "****"
//     (the processor's default when no hash_function is set).
//   - mode "match": redaction processor blocked_key_patterns: does the regex match the
//     input (an attribute key)?
//   - "ottl": true means regex and replacement are OTTL string literals (with their
//     surrounding double quotes) and are unquoted first, as the OTTL parser does.
//
// Output (stdout, JSON): {"errors": {"<set>/<id>": "..."}, "results": {"<set>": [...]}}
// where results[set][i] is inputs[i] after every rule of the set in order ("replace",
// "mask"), or "true"/"false" when the set's rules are "match" rules (any rule matches).
//
// Standard library only; run with `go run collector/tools/regexcheck/main.go`.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
)

type rule struct {
	ID          string `json:"id"`
	Regex       string `json:"regex"`
	Replacement string `json:"replacement"`
	Mode        string `json:"mode"`
	OTTL        bool   `json:"ottl"`
}

type request struct {
	Sets   map[string][]rule `json:"sets"`
	Inputs []string          `json:"inputs"`
}

type compiled struct {
	re          *regexp.Regexp
	replacement string
	mode        string
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "regexcheck: bad input:", err)
		os.Exit(2)
	}
	errors := map[string]string{}
	results := map[string][]string{}
	for name, rules := range req.Sets {
		var set []compiled
		for _, r := range rules {
			pattern, replacement := r.Regex, r.Replacement
			if r.OTTL {
				var err error
				if pattern, err = strconv.Unquote(r.Regex); err != nil {
					errors[name+"/"+r.ID] = "OTTL string literal: " + err.Error()
					continue
				}
				if r.Mode == "replace" {
					if replacement, err = strconv.Unquote(r.Replacement); err != nil {
						errors[name+"/"+r.ID] = "OTTL replacement literal: " + err.Error()
						continue
					}
				}
			}
			re, err := regexp.Compile(pattern)
			if err != nil {
				errors[name+"/"+r.ID] = err.Error()
				continue
			}
			set = append(set, compiled{re, replacement, r.Mode})
		}
		out := make([]string, len(req.Inputs))
		for i, text := range req.Inputs {
			matched := false
			for _, c := range set {
				switch c.mode {
				case "replace":
					text = c.re.ReplaceAllString(text, c.replacement)
				case "mask":
					if c.re.MatchString(text) {
						text = c.re.ReplaceAllStringFunc(text, func(string) string { return "****" })
					}
				case "match":
					matched = matched || c.re.MatchString(text)
				}
			}
			if len(set) > 0 && set[0].mode == "match" {
				text = strconv.FormatBool(matched)
			}
			out[i] = text
		}
		results[name] = out
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"errors": errors, "results": results}); err != nil {
		os.Exit(2)
	}
}
