package classify_test

import (
	"fmt"

	"github.com/promptcascade/promptcascade/internal/classify"
)

func ExampleClassifier_Classify() {
	c := classify.Default() // the reference article's heuristic
	for _, p := range []string{
		"What is the capital of France?",
		"Explain how gradient descent works with momentum",
		"Analyze the tradeoffs between LORA and full fine-tuning for a 70B parameter model, compare memory usage and downstream task performance",
	} {
		tier, sig := c.Classify(p)
		fmt.Printf("%-8s words=%d complex=%d moderate=%d\n", tier, sig.WordCount, sig.ComplexHits, sig.ModerateHits)
	}
	// Output:
	// simple   words=6 complex=0 moderate=0
	// moderate words=7 complex=0 moderate=1
	// complex  words=20 complex=3 moderate=0
}

func ExampleNew() {
	r := classify.DefaultRules()
	r.ModerateKeywords = append(r.ModerateKeywords, "list|enumerate")
	r.ModerateLongWords = 20
	c, err := classify.New(r)
	if err != nil {
		fmt.Println(err)
		return
	}
	tier, _ := c.Classify("List the planets of the solar system")
	fmt.Println(tier)

	r.ComplexMinHits = 0
	_, err = classify.New(r)
	fmt.Println(err)
	// Output:
	// moderate
	// classifier.complex_min_hits: must be >= 1, got 0
}
