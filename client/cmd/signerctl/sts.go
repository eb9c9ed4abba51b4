package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nitro-signer/nitro-signer/internal/cli"
)

// stsCredentials: signerctl sts credentials --actor OMNI --role-arn ARN [--ttl D] [client flags]
//
// It prints the credentials as the JSON an AWS SDK's credential_process
// reads (Version, AccessKeyId, SecretAccessKey, SessionToken, Expiration),
// with the role, the session's ARN and the issuer key beside them.
func stsCredentials(args []string, stdout, stderr io.Writer) int {
	cmd := command("sts credentials")
	actor := cmd.Flags.String("actor", "", "the actor omni `OMNI` (64 hex characters) the credentials are confined to")
	role := cmd.Flags.String("role-arn", "", "the IAM role `ARN` to assume, one of the enclave's configured sts.roles")
	ttl := cmd.Flags.Duration("ttl", time.Hour, "the credentials' lifetime, whole seconds, 15m up to the role's max_ttl")
	var cf cli.ClientFlags
	cf.Register(cmd.Flags)
	if code, ok := cmd.Parse(args, stdout, stderr); !ok {
		return code
	}
	switch {
	case *actor == "":
		return cmd.UsageError(stderr, "--actor is required")
	case *role == "":
		return cmd.UsageError(stderr, "--role-arn is required")
	case *ttl <= 0 || *ttl%time.Second != 0:
		return cmd.UsageError(stderr, "--ttl %v: want a positive whole number of seconds", *ttl)
	}
	c, err := cf.Client()
	if err != nil {
		fmt.Fprintf(stderr, "sts credentials: %v\n", err)
		return cli.ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.Timeout)
	defer cancel()
	creds, err := c.STSCredentials(ctx, *actor, *role, *ttl)
	if err != nil {
		return failed(stderr, "sts credentials", err)
	}
	printJSON(stdout, struct {
		Version         int    `json:"Version"`
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string `json:"SecretAccessKey"`
		SessionToken    string `json:"SessionToken"`
		Expiration      string `json:"Expiration"`
		RoleARN         string `json:"RoleArn"`
		AssumedRoleARN  string `json:"AssumedRoleArn"`
		KeyID           string `json:"kid"`
		Epoch           uint32 `json:"k3_epoch"`
	}{1, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken, creds.Expiration.UTC().Format(time.RFC3339),
		creds.RoleARN, creds.AssumedRoleARN, creds.KeyID, creds.Epoch})
	return cli.ExitOK
}
