#!/bin/sh
# One-shot of docker-compose.temporal.yml, run with the temporal CLI of temporalio/admin-tools
# once the server answers: creates the namespace (the plain server image, unlike the deprecated
# auto-setup one, makes none) and registers the six Keyword search attributes every build sets
# (DESIGN.md §3). Safe to run again: what exists is left as it is.
set -eu
: "${TEMPORAL_ADDRESS:=temporal:7233}" "${SLIPWAY_TEMPORAL_NAMESPACE:=default}"
export TEMPORAL_ADDRESS

tries=0
until temporal operator cluster health >/dev/null 2>&1; do
	tries=$((tries + 1))
	if [ "$tries" -ge 120 ]; then
		echo "temporal at $TEMPORAL_ADDRESS did not answer in 2 minutes" >&2
		exit 1
	fi
	sleep 1
done

if ! temporal operator namespace describe --namespace "$SLIPWAY_TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
	temporal operator namespace create --namespace "$SLIPWAY_TEMPORAL_NAMESPACE" --retention 30d
fi

# A new namespace reaches the frontend's namespace cache some seconds after it is created
# (10 s refresh by default): until then it is "not found".
n=0
until existing=$(temporal operator search-attribute list --namespace "$SLIPWAY_TEMPORAL_NAMESPACE" 2>&1); do
	n=$((n + 1))
	if [ "$n" -ge 60 ]; then
		printf '%s\n' "$existing" >&2
		exit 1
	fi
	sleep 1
done
for name in SlipwayNamespace SlipwayRepository SlipwayRule GitRef GitCommit BuildTrigger; do
	if printf '%s\n' "$existing" | grep -qw "$name"; then
		continue
	fi
	# A namespace that was just created can take a moment to accept search attributes.
	n=0
	until temporal operator search-attribute create --namespace "$SLIPWAY_TEMPORAL_NAMESPACE" --name "$name" --type Keyword; do
		n=$((n + 1))
		[ "$n" -lt 30 ] || exit 1
		sleep 2
	done
done
temporal operator search-attribute list --namespace "$SLIPWAY_TEMPORAL_NAMESPACE"
echo "namespace $SLIPWAY_TEMPORAL_NAMESPACE ready"
