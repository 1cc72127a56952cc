package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// A template writes one prompt and names its category (stored in metadata).
type template struct {
	category string
	write    func(r *rand.Rand) string
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// passage returns n sentences of one kind of context, in their order.
func passage(r *rand.Rand, kind string, n int) string {
	pool := passages[kind]
	n = min(n, len(pool))
	start := r.IntN(len(pool) - n + 1)
	return strings.Join(pool[start:start+n], " ")
}

func docKind(r *rand.Rand) (doc, kind string) {
	switch kind = pick(r, passageKinds); kind {
	case "support":
		return "customer email", kind
	case "incident":
		return "incident timeline", kind
	case "research":
		return "research abstract", kind
	case "business":
		return "quarterly update", kind
	case "meeting":
		return "meeting notes", kind
	default:
		return "product description", kind
	}
}

// Templates that usually come out simple: short questions without the
// classifier's keywords (some with near misses such as "writer" or
// "redesigned", which do not count).
var simpleTemplates = []template{
	{"factual", func(r *rand.Rand) string { return fmt.Sprintf("What is the capital of %s?", pick(r, countries)) }},
	{"factual", func(r *rand.Rand) string { return fmt.Sprintf("Who was the writer of %s?", pick(r, books)) }},
	{"factual", func(r *rand.Rand) string { return fmt.Sprintf("When did %s happen?", pick(r, events)) }},
	{"factual", func(r *rand.Rand) string { return fmt.Sprintf("What does %s stand for?", pick(r, acronyms)) }},
	{"factual", func(r *rand.Rand) string {
		return fmt.Sprintf("What is the chemical symbol for %s?", pick(r, elements))
	}},
	{"factual", func(r *rand.Rand) string {
		return fmt.Sprintf("What is the boiling point of %s at sea level?", pick(r, substances))
	}},
	{"factual", func(r *rand.Rand) string { return fmt.Sprintf("Which planet is %s?", pick(r, planets)) }},
	{"factual", func(r *rand.Rand) string { return fmt.Sprintf("What time zone is %s in?", pick(r, cities)) }},
	{"factual", func(r *rand.Rand) string { return fmt.Sprintf("Name the largest city in %s.", pick(r, countries)) }},
	{"factual", func(r *rand.Rand) string {
		return fmt.Sprintf("Which company designs the %s, and where is it based?", pick(r, products))
	}},
	{"math", func(r *rand.Rand) string {
		u := pick(r, units)
		return fmt.Sprintf("Convert %d %s to %s.", 2+r.IntN(498), u[0], u[1])
	}},
	{"math", func(r *rand.Rand) string { return fmt.Sprintf("What's %d times %d?", 12+r.IntN(88), 3+r.IntN(40)) }},
	{"math", func(r *rand.Rand) string { return fmt.Sprintf("Is %d a prime number?", 101+r.IntN(9000)) }},
	{"math", func(r *rand.Rand) string {
		return fmt.Sprintf("If a shirt costs $%d and is %d%% off, what is the sale price?", 20+r.IntN(80), 10+5*r.IntN(8))
	}},
	{"math", func(r *rand.Rand) string { return fmt.Sprintf("%d + %d = ?", r.IntN(1000), r.IntN(1000)) }},
	{"language", func(r *rand.Rand) string { return fmt.Sprintf("Give me a synonym for %q.", pick(r, words)) }},
	{"language", func(r *rand.Rand) string { return fmt.Sprintf("Define %q in one sentence.", pick(r, words)) }},
	{"language", func(r *rand.Rand) string { return fmt.Sprintf("Fix the spelling: %s", pick(r, misspellings)) }},
	{"language", func(r *rand.Rand) string {
		return fmt.Sprintf("How do you say %q in %s?", pick(r, phrases), pick(r, languages))
	}},
	{"language", func(r *rand.Rand) string {
		return fmt.Sprintf("Correct the grammar: %q", pick(r, sentencesToFix))
	}},
	{"language", func(r *rand.Rand) string {
		return fmt.Sprintf("Rewrite this more politely: %q", pick(r, []string{"send it now", "you are wrong about this", "stop emailing me", "why is this late again"}))
	}},
	{"classification", func(r *rand.Rand) string {
		return fmt.Sprintf("Is this review positive or negative? %q", pick(r, reviews))
	}},
	{"classification", func(r *rand.Rand) string {
		return fmt.Sprintf("Tag this support message with one word (billing, shipping or other): %q", pick(r, passages["support"]))
	}},
	{"recommendation", func(r *rand.Rand) string {
		return fmt.Sprintf("Recommend a %s book for a long flight.", pick(r, genres))
	}},
	{"recommendation", func(r *rand.Rand) string { return fmt.Sprintf("Suggest a name for a %s.", pick(r, animals)) }},
	{"recommendation", func(r *rand.Rand) string {
		return fmt.Sprintf("List three fruits that are %s.", pick(r, colors))
	}},
	{"recommendation", func(r *rand.Rand) string {
		return fmt.Sprintf("What should I pack for a weekend in %s in %s?", pick(r, cities), pick(r, []string{"January", "April", "July", "October"}))
	}},
	{"chit-chat", func(r *rand.Rand) string {
		return pick(r, []string{"Tell me a joke about databases.", "Good morning!", "What's a fun fact about octopuses?", "Any tips for falling asleep faster?", "Flip a coin for me.", "How are you today?", "Give me a random word."})
	}},
	{"foreign", func(r *rand.Rand) string { return pick(r, foreign) }},
	{"factual", func(r *rand.Rand) string {
		return fmt.Sprintf("In %s: what year was %s first published, and who was the writer?", pick(r, []string{"short", "one line", "a few words"}), pick(r, books))
	}},
	{"extraction", func(r *rand.Rand) string {
		return fmt.Sprintf("What is the order number in this message? %s", passage(r, "support", 2+r.IntN(2)))
	}},
}

// Templates that usually come out moderate: a moderate keyword, or a long
// prompt without two complex keywords.
var moderateTemplates = []template{
	{"explanation", func(r *rand.Rand) string {
		return fmt.Sprintf("Explain %s to %s.", pick(r, concepts), pick(r, audiences))
	}},
	{"explanation", func(r *rand.Rand) string {
		return fmt.Sprintf("Can you explain %s? Keep it under %d words.", pick(r, concepts), 50+50*r.IntN(4))
	}},
	{"explanation", func(r *rand.Rand) string {
		return fmt.Sprintf("I keep hearing about %s at work. Explain it simply, with one everyday analogy and one example from software.", pick(r, concepts))
	}},
	{"writing", func(r *rand.Rand) string {
		return fmt.Sprintf("Write a %s about %s.", pick(r, forms), pick(r, formTopics))
	}},
	{"writing", func(r *rand.Rand) string {
		return fmt.Sprintf("Write a %s about %s. Make it %s and avoid clichés.", pick(r, forms), pick(r, formTopics), pick(r, []string{"warm", "funny", "formal", "upbeat", "wistful"}))
	}},
	{"coding", func(r *rand.Rand) string {
		return fmt.Sprintf("Write a %s function that %s.", pick(r, progLangs), pick(r, codeTasks))
	}},
	{"coding", func(r *rand.Rand) string {
		return fmt.Sprintf("Implement %s in %s with unit tests.", pick(r, algorithms), pick(r, progLangs))
	}},
	{"coding", func(r *rand.Rand) string {
		return fmt.Sprintf("Create a %s script that %s and prints the result.", pick(r, progLangs), pick(r, codeTasks))
	}},
	{"planning", func(r *rand.Rand) string {
		p := pick(r, planGoals)
		return fmt.Sprintf("Create %s for %s.", p[0], p[1])
	}},
	{"summarization", func(r *rand.Rand) string {
		doc, kind := docKind(r)
		return fmt.Sprintf("Summarize the following %s in three bullet points:\n\n%s", doc, passage(r, kind, 3+r.IntN(5)))
	}},
	{"summarization", func(r *rand.Rand) string {
		doc, kind := docKind(r)
		return fmt.Sprintf("Summarize this %s for someone who has two minutes: %s", doc, passage(r, kind, 2+r.IntN(4)))
	}},
	{"translation", func(r *rand.Rand) string {
		return fmt.Sprintf("Translate %q into %s.", pick(r, phrases), pick(r, languages))
	}},
	{"translation", func(r *rand.Rand) string {
		return fmt.Sprintf("Translate this %s into %s, keeping the tone: %s", "customer email", pick(r, languages), passage(r, "support", 2+r.IntN(3)))
	}},
	{"extraction", func(r *rand.Rand) string {
		doc, kind := docKind(r)
		return fmt.Sprintf("Here is a %s. %s Pull out every date, number and person's name as a JSON list.", doc, passage(r, kind, 4+r.IntN(3)))
	}},
	{"qa", func(r *rand.Rand) string {
		doc, kind := docKind(r)
		return fmt.Sprintf("Read this %s and answer: what is the single most important next step? %s", doc, passage(r, kind, 4+r.IntN(4)))
	}},
	{"support", func(r *rand.Rand) string {
		return fmt.Sprintf("Draft a reply to this customer. Apologise once, give a clear next step, and do not promise a date we cannot keep. %s", passage(r, "support", 3+r.IntN(4)))
	}},
	{"coding", func(r *rand.Rand) string {
		return fmt.Sprintf("Debug this %s line; it %s: %s", pick(r, progLangs), pick(r, symptoms), pick(r, snippets))
	}},
}

// Templates that usually come out complex: two or more complex keywords, or
// one in a prompt of more than fifty words.
var complexTemplates = []template{
	{"analysis", func(r *rand.Rand) string {
		p := pick(r, pairs)
		return fmt.Sprintf("Analyze the tradeoffs between %s and %s for %s.", p[0], p[1], pick(r, contexts))
	}},
	{"analysis", func(r *rand.Rand) string {
		p := pick(r, pairs)
		return fmt.Sprintf("Compare %s and %s for %s, and spell out the implications for cost and hiring.", p[0], p[1], pick(r, contexts))
	}},
	{"analysis", func(r *rand.Rand) string {
		p := pick(r, pairs)
		return fmt.Sprintf("Analyze the tradeoffs between %s and %s for %s, compare %s and operating cost, and recommend one.", p[0], p[1], pick(r, contexts), pick(r, aspects))
	}},
	{"architecture", func(r *rand.Rand) string {
		return fmt.Sprintf("Design %s. Describe the components, the data model and the main trade-offs.", pick(r, systems))
	}},
	{"architecture", func(r *rand.Rand) string {
		return fmt.Sprintf("Architect %s on AWS and explain how you would optimize it for %s.", pick(r, systems), pick(r, aspects))
	}},
	{"coding", func(r *rand.Rand) string {
		return fmt.Sprintf("Refactor this %s code to optimize %s, and explain each change: %s", pick(r, progLangs), pick(r, aspects), pick(r, snippets))
	}},
	{"coding", func(r *rand.Rand) string {
		return fmt.Sprintf("Debug this %s snippet. It %s. Find the root cause, then refactor it so the bug cannot come back: %s", pick(r, progLangs), pick(r, symptoms), pick(r, snippets))
	}},
	{"math", func(r *rand.Rand) string {
		return fmt.Sprintf("Prove that %s, then analyze where each step of the proof uses an assumption.", pick(r, mathClaims))
	}},
	{"strategy", func(r *rand.Rand) string {
		return fmt.Sprintf("We are considering %s. What are the trade-offs, and what are the second-order implications for the team?", pick(r, tradeoffSubjects))
	}},
	{"strategy", func(r *rand.Rand) string {
		return fmt.Sprintf("Context: %s Analyze the situation and recommend where we should spend next quarter's budget, with the risks of each option.", passage(r, "business", 4+r.IntN(4)))
	}},
	{"postmortem", func(r *rand.Rand) string {
		return fmt.Sprintf("Here is an incident timeline. %s Debug what went wrong in our process, not just in the code, and propose three concrete changes with owners.", passage(r, "incident", 5+r.IntN(4)))
	}},
	{"research", func(r *rand.Rand) string {
		return fmt.Sprintf("Abstract: %s Compare these findings with what you know about scaling laws and point out any claims that need stronger evidence.", passage(r, "research", 4+r.IntN(4)))
	}},
	{"architecture", func(r *rand.Rand) string {
		return fmt.Sprintf("We need %s. Our constraints: a team of %d engineers, a budget of $%dk per month, and a hard requirement for %s. Design the first version, say what you would leave out, and describe how it would need to change at ten times the load.", pick(r, systems), 2+r.IntN(10), 5+5*r.IntN(20), pick(r, []string{"EU data residency", "99.95% availability", "end-to-end encryption", "audit logs for every change"}))
	}},
}
