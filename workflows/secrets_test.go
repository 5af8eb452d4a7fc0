package workflows

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/slipway-dev/slipway/activities"
)

func TestDockerBuilderPassesSecretNamesToTheBuildStep(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		wantNS  string
	}{
		{"names secrets", []string{"NPM_TOKEN", "SSH_KEY"}, "demo"},
		{"names none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			var c calls
			mockHappy(env, &c)
			env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
			env.OnUpsertMemo(mock.Anything).Return(nil)
			var got *activities.BuildInput
			env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
				if info.ActivityType.Name != "Build" {
					return
				}
				var in activities.BuildInput
				if err := args.Get(&in); err != nil {
					t.Errorf("decoding build input: %v", err)
				}
				got = &in
			})
			in := input()
			in.Secrets = tt.secrets
			env.ExecuteWorkflow(DockerBuilder, in)
			if err := env.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("the build step did not run")
			}
			if !slices.Equal(got.Secrets, tt.secrets) || got.Namespace != tt.wantNS {
				t.Fatalf("build step got secrets %v of namespace %q, want %v of %q", got.Secrets, got.Namespace, tt.secrets, tt.wantNS)
			}
		})
	}
}
