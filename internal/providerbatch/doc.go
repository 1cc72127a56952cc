// Package providerbatch runs cascade steps through the providers' batch APIs
// (OpenAI Batch, Anthropic Message Batches, Gemini Batch Mode, and the
// simulated provider's batch mode), which answer within 24 hours at about
// half the synchronous price. It declares the Client it needs from a
// provider adapter; the adapters in internal/llm implement it beside
// llm.Provider.
package providerbatch
