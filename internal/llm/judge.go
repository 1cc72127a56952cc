package llm

import (
	"strings"
	"unicode"
)

// JudgeSystem is the system prompt of shadow labelling's pairwise judge
// protocol: a judge model is shown a
// prompt and two answers, A (the answer the cascade kept, from the cheaper
// tier) and B (the tier above's answer), and asked whether A is as good as
// B. It must answer YES or NO first. The prompt is fixed so that verdicts
// stay comparable across batches; it is documented in the README.
const JudgeSystem = "You are a strict, impartial grader of answers. You compare two answers to the same prompt. " +
	"Reply with one word first: YES if answer A is as correct, complete and useful as answer B (or better), " +
	"NO if answer B is clearly better. You may add one short sentence of reason after the word."

// Section markers of the judge prompt.
const (
	judgePromptMark = "[PROMPT]\n"
	judgeAMark      = "\n[ANSWER A]\n"
	judgeBMark      = "\n[ANSWER B]\n"
	judgeEndMark    = "\n[END]\nIs answer A as good as answer B? Reply YES or NO."
)

// JudgePrompt is the user message sent to the judge.
func JudgePrompt(prompt, a, b string) string {
	return judgePromptMark + prompt + judgeAMark + a + judgeBMark + b + judgeEndMark
}

// ParseJudgePrompt splits a JudgePrompt back into its parts (what a
// simulated judge reads); ok is false for any other text.
func ParseJudgePrompt(text string) (prompt, a, b string, ok bool) {
	rest, ok := strings.CutPrefix(text, judgePromptMark)
	if !ok {
		return "", "", "", false
	}
	rest, ok = strings.CutSuffix(rest, judgeEndMark)
	if !ok {
		return "", "", "", false
	}
	// Answers are split at the last markers: a prompt may quote a marker.
	i := strings.LastIndex(rest, judgeBMark)
	if i < 0 {
		return "", "", "", false
	}
	b = rest[i+len(judgeBMark):]
	rest = rest[:i]
	j := strings.LastIndex(rest, judgeAMark)
	if j < 0 {
		return "", "", "", false
	}
	return rest[:j], rest[j+len(judgeAMark):], b, true
}

// ParseVerdict reads a judge's reply: YES (A is as good) or NO, as the first
// word, in any case and with punctuation or markdown around it. ok is false
// when the reply starts with neither.
func ParseVerdict(reply string) (asGood, ok bool) {
	w := strings.TrimLeftFunc(reply, func(r rune) bool { return !unicode.IsLetter(r) })
	end := strings.IndexFunc(w, func(r rune) bool { return !unicode.IsLetter(r) })
	if end >= 0 {
		w = w[:end]
	}
	switch strings.ToUpper(w) {
	case "YES":
		return true, true
	case "NO":
		return false, true
	}
	return false, false
}
