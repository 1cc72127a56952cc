package prompt

import "testing"

// Which outcomes a retry of the same model may cure: the one table that the
// cascade, the worker and the provider batch runner all read.
func TestOutcomeRetryable(t *testing.T) {
	t.Parallel()
	retryable := map[Outcome]bool{
		OutcomeRateLimited: true, OutcomeOverloaded: true, OutcomeServerError: true,
		OutcomeTimeout: true, OutcomeNetwork: true,
	}
	for _, o := range []Outcome{
		OutcomeOK, OutcomeQualityFailed, OutcomeRateLimited, OutcomeOverloaded, OutcomeServerError,
		OutcomeTimeout, OutcomeNetwork, OutcomeAuthError, OutcomePermission, OutcomeNotFound,
		OutcomeBadRequest, OutcomeContextWindow, OutcomeQuotaExhausted, OutcomeContentFilter,
		OutcomeEmptyResponse, OutcomeCooldownSkip, OutcomeCanceled, OutcomeBatchExpired,
		OutcomeBatchCanceled, OutcomeShadow, "",
	} {
		if got := o.Retryable(); got != retryable[o] {
			t.Errorf("%q.Retryable() = %v, want %v", o, got, retryable[o])
		}
		if o.Transient() != o.Retryable() {
			t.Errorf("%q: Transient and Retryable disagree", o)
		}
	}
}
