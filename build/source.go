package build

// RefBranch and RefTag are the kinds of Git ref a build starts from.
const (
	RefBranch = "branch"
	RefTag    = "tag"
)

// Ref names the branch or tag a build starts from.
type Ref struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// FullName is the ref as Git spells it on the remote.
func (r Ref) FullName() string {
	if r.Type == RefTag {
		return "refs/tags/" + r.Name
	}
	return "refs/heads/" + r.Name
}

// Source is the repository a build clones. CloneURL is not a secret: credentials are looked
// up by the worker, never carried in the URL.
type Source struct {
	Provider   string `json:"provider"`
	Owner      string `json:"owner"`
	Repository string `json:"repository"`
	CloneURL   string `json:"clone_url,omitempty"`
	// AccountID names the connected account whose token reads the repository. It is a
	// reference: the token itself never enters a workflow.
	AccountID string `json:"account_id,omitempty"`
}

// Triggers is a rule's "triggers" object: which pushes start a build. The store keeps it, the
// gateway checks it and the webhook matches deliveries against it.
type Triggers struct {
	// Branches lists the branches that build: exact names, globs ("*" within a path segment,
	// "**" across "/") or RE2 expressions between slashes ("/^release-(\d+)$/"), whose
	// captures the tag template may name.
	Branches []string `json:"branches"`
	// Tags, when set, makes new or moved Git tags start a build: all of them, or only those
	// TagPatterns match when it has entries.
	Tags bool `json:"tags"`
	// TagPatterns narrows Tags, in the form of Branches.
	TagPatterns []string `json:"tag_patterns"`
	// Paths, when set, starts a build only for pushes that changed a file it selects.
	Paths *PathFilter `json:"paths,omitempty"`
}

// PathFilter selects the pushes that build by the files they changed, so a monorepo's image
// is not rebuilt for a change to its documentation. Entries are globs over paths from the
// repository root ("*" within a segment, "**" across "/").
type PathFilter struct {
	// Include, when it has entries, builds only for changes to a file one of them matches.
	Include []string `json:"include,omitempty"`
	// Ignore drops the changes to the files one of them matches before Include is asked.
	Ignore []string `json:"ignore,omitempty"`
}

// Commit status states, as GitHub names them; the provider clients map them onto GitLab's.
const (
	StatePending = "pending"
	StateSuccess = "success"
	StateFailure = "failure"
	StateError   = "error"
	// StateCanceled is for a build that was canceled: GitLab has a state of that name, GitHub
	// shows it as "error".
	StateCanceled = "canceled"
)

// CommitStatus is what a build reports on the commit it built, shown next to the commit and
// its pull or merge requests.
type CommitStatus struct {
	// State is one of the State constants.
	State string `json:"state"`
	// Description is cut to 140 characters, GitHub's limit.
	Description string `json:"description"`
	// TargetURL links to the build record.
	TargetURL string `json:"target_url"`
	// Context tells Slipway's status apart from other checks on the commit (GitLab calls it
	// the name); a later status of the same context replaces the earlier one.
	Context string `json:"context"`
}
