package llm

// EstimateUsage is for a response that reported no usage (some
// OpenAI-compatible servers omit it). It marks resp.UsageEstimated and, when
// count is not nil, fills InputTokens from the system and user text and
// OutputTokens from the answer. With a nil count the token fields stay 0 and
// the caller estimates (with tokens.Count, say).
func EstimateUsage(resp *Response, req Request, count func(string) int) {
	resp.UsageEstimated = true
	if count == nil {
		return
	}
	resp.InputTokens = count(req.Prompt)
	if req.System != "" {
		resp.InputTokens += count(req.System)
	}
	resp.OutputTokens = count(resp.Text)
	resp.CacheReadTokens = 0
	resp.CacheWriteTokens = 0
}
