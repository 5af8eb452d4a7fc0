package workflows

// Change IDs of workflow.GetVersion. Each marks a change to the order or the content of the
// commands DockerBuilder issues; an execution started before the change replays the
// DefaultVersion branch, which issues the commands its recorded history holds, and a new one
// takes version 1. A change ID is part of every history that recorded it: never rename one,
// and remove a branch only once no execution that took it can still be replayed.
const (
	// versionTenantLimits: version 1 reads the worker's build limits in a local activity and
	// holds the build to them (timeout, builds per namespace). DefaultVersion preserves
	// executions started before those limits existed, which ran without the local activity.
	versionTenantLimits = "tenant-limits"
	// versionSuperseded: version 1 ends a build whose commit left its ref (CommitNotOnRef)
	// as superseded rather than failed. DefaultVersion preserves the failed outcome of
	// executions that failed that way before the outcome existed.
	versionSuperseded = "superseded"
	// versionResolveAndTagTogether: version 1 schedules the resolve and tag steps together
	// and waits for both. DefaultVersion preserves the old order, resolve done before tag is
	// scheduled.
	versionResolveAndTagTogether = "resolve-and-tag-together"
	// versionTagOrder: version 1 records the built commit in the image (Revision) and passes
	// the mutable tags to push, which moves each only forward along the ref. DefaultVersion
	// preserves builds scheduled before that, which pushed every tag as it was.
	versionTagOrder = "tag-order"
	// versionSkipped: version 1 passes a push's path filter and previous head to the clone
	// step and ends the build as skipped when the push changed nothing the filter selects.
	// Only builds whose input carries Paths ask; DefaultVersion builds as before.
	versionSkipped = "skipped"
	// versionRunPolicy: version 1 waits for the slot of the build's rule (run_policy serial)
	// or of its ref (latest_only) before the namespace's. Only builds whose input names a
	// policy ask; DefaultVersion runs them as parallel, as before.
	versionRunPolicy = "run-policy"
	// versionNotify: version 1 sends the build's started and end events to the namespace's
	// notifications (a local activity reads which want them; each event wanted starts an
	// abandoned slipway_notify child). DefaultVersion preserves builds recorded before
	// notifications, which sent none.
	versionNotify = "notify"
	// versionBuildSecrets: version 1 passes the names of the build's secrets, and its
	// namespace, to the build step, which serves their values to BuildKit. Only builds whose
	// input names secrets ask; DefaultVersion builds without them, as before.
	versionBuildSecrets = "build-secrets"
	// versionFoldedSteps: version 1 has the clone step resolve the Dockerfile and context on
	// its checkout and renders the tags in workflow code (a side effect), so the resolve and
	// tag steps schedule no activity: two activity tasks and one or two workflow tasks fewer
	// per build, the status still showing both steps. DefaultVersion schedules
	// ResolveDockerfile and RenderTag as before.
	versionFoldedSteps = "fold-resolve-tag"
	// versionEarlyRelease: version 1 starts giving a build's slots back as soon as its steps
	// succeeded, in the workflow task that completes the session, and waits for the signals
	// at the end: one workflow task fewer per build. DefaultVersion gives them back after the
	// session's end, one after the other.
	versionEarlyRelease = "early-release"
)
