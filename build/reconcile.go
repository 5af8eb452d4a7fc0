package build

// ReconcileWorkflowName is the workflow type of a rule's reconciliation, which a rule's
// Temporal Schedule (slipway-reconcile-RULE) starts.
const ReconcileWorkflowName = "slipway_reconcile"

// ReconcileInput is what a rule's Schedule starts the reconcile workflow with: the rule's
// build parameters (Ref, Commit, Trigger, Captures and Latest are filled in per head) and
// what selects its refs. The gateway writes it again whenever the rule is saved.
type ReconcileInput struct {
	Template Input    `json:"template"`
	Triggers Triggers `json:"triggers"`
	// TagLatest is the rule's tag_latest: "default_branch" tags latest on builds of the
	// repository's default branch.
	TagLatest string `json:"tag_latest,omitempty"`
}
