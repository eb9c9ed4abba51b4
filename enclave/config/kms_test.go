package config_test

import (
	"errors"
	"testing"

	"github.com/nitro-signer/nitro-signer/enclave/config"
)

const (
	operatorKey = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	chinaKey    = "arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	govKey      = "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	mrkKey      = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
)

// AWS resolves an alias name or a bare key id in the account of the
// credentials that sign the call, and those come from the parent: only a
// full key ARN names the operator's key. The region and the endpoint must
// be the key's.
func TestKMSAliasInConfigIsRefused(t *testing.T) {
	b := devConfig(t)
	ca := callerCA(t, b)
	tests := []struct {
		name   string
		mutate func(k map[string]any)
		want   error
	}{
		{"bad_alias_name", func(k map[string]any) { k["key_id"] = "alias/signer" }, config.ErrKMSKeyID},
		{"bad_alias_arn", func(k map[string]any) { k["key_id"] = "arn:aws:kms:us-east-1:111122223333:alias/signer" }, config.ErrKMSKeyID},
		{"bad_bare_key_id", func(k map[string]any) { k["key_id"] = "1234abcd-12ab-34cd-56ef-1234567890ab" }, config.ErrKMSKeyID},
		{"bad_bare_multi_region_key_id", func(k map[string]any) { k["key_id"] = "mrk-1234abcd12ab34cd56ef1234567890ab" }, config.ErrKMSKeyID},
		{"bad_key_arn_upper_case_id", func(k map[string]any) {
			k["key_id"] = "arn:aws:kms:us-east-1:111122223333:key/1234ABCD-12ab-34cd-56ef-1234567890ab"
		}, config.ErrKMSKeyID},
		{"bad_key_arn_short_account", func(k map[string]any) {
			k["key_id"] = "arn:aws:kms:us-east-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		}, config.ErrKMSKeyID},
		{"bad_key_arn_other_service", func(k map[string]any) {
			k["key_id"] = "arn:aws:iam:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		}, config.ErrKMSKeyID},
		{"bad_key_arn_trailing", func(k map[string]any) { k["key_id"] = operatorKey + "/x" }, config.ErrKMSKeyID},
		{"bad_unknown_partition", func(k map[string]any) {
			k["key_id"] = "arn:aws-iso:kms:us-iso-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		}, config.ErrKMSKeyID},
		{"bad_region_of_another_partition", func(k map[string]any) {
			k["key_id"] = "arn:aws-cn:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
			delete(k, "region")
		}, config.ErrKMSKeyID},
		{"bad_empty", func(k map[string]any) { k["key_id"] = "" }, config.ErrKMSKeyID},
		{"bad_region_not_the_keys", func(k map[string]any) { k["region"] = "us-west-2" }, config.ErrKMSEndpoint},
		{"bad_endpoint_other_region", func(k map[string]any) { k["endpoint"] = "https://kms.us-west-2.amazonaws.com" }, config.ErrKMSEndpoint},
		{"bad_endpoint_other_partition", func(k map[string]any) { k["endpoint"] = "https://kms.us-east-1.amazonaws.com.cn" }, config.ErrKMSEndpoint},
		{"bad_endpoint_other_service", func(k map[string]any) { k["endpoint"] = "https://sts.us-east-1.amazonaws.com" }, config.ErrKMSEndpoint},
		{"bad_endpoint_lookalike", func(k map[string]any) { k["endpoint"] = "https://kms.us-east-1.amazonaws.com.s3.amazonaws.com" }, config.ErrKMSEndpoint},
		{"bad_endpoint_vpce_other_region", func(k map[string]any) {
			k["endpoint"] = "https://vpce-0123456789abcdef0-abcdefgh.kms.eu-west-1.vpce.amazonaws.com"
		}, config.ErrKMSEndpoint},
		{"bad_endpoint_dual_stack_of_another_region", func(k map[string]any) { k["endpoint"] = "https://kms.us-west-2.api.aws" }, config.ErrKMSEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse(edit(t, b, func(m map[string]any) { m["sealing"] = kmsSealing(ca, tt.mutate) }))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse: %v, want %v", err, tt.want)
			}
			t.Log(err)
		})
	}
}

func TestKMSKeyARNPinsRegionAndEndpoint(t *testing.T) {
	b := devConfig(t)
	ca := callerCA(t, b)
	tests := []struct {
		name              string
		keyID, region, ep string
		wantURL           string
	}{
		{"default_endpoint", operatorKey, "us-east-1", "", "https://kms.us-east-1.amazonaws.com:443"},
		{"region_from_the_arn", operatorKey, "", "", "https://kms.us-east-1.amazonaws.com:443"},
		{"china", chinaKey, "", "", "https://kms.cn-north-1.amazonaws.com.cn:443"},
		{"govcloud", govKey, "", "", "https://kms.us-gov-west-1.amazonaws.com:443"},
		{"multi_region_key", mrkKey, "eu-west-1", "", "https://kms.eu-west-1.amazonaws.com:443"},
		{"fips", operatorKey, "", "https://kms-fips.us-east-1.amazonaws.com", "https://kms-fips.us-east-1.amazonaws.com:443"},
		{"vpc_endpoint", operatorKey, "", "https://vpce-0123456789abcdef0-abcdefgh.kms.us-east-1.vpce.amazonaws.com",
			"https://vpce-0123456789abcdef0-abcdefgh.kms.us-east-1.vpce.amazonaws.com:443"},
		{"private_name_override", operatorKey, "", "https://kms.internal.example:8443", "https://kms.internal.example:8443"},
		{"dual_stack", operatorKey, "", "https://kms.us-east-1.api.aws", "https://kms.us-east-1.api.aws:443"},
		{"test_kms_override", operatorKey, "", "https://127.0.0.1:4430", "https://127.0.0.1:4430"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse(edit(t, b, func(m map[string]any) {
				m["sealing"] = kmsSealing(ca, func(k map[string]any) {
					k["key_id"], k["region"], k["endpoint"] = tt.keyID, tt.region, tt.ep
				})
			}))
			if err != nil {
				t.Fatal(err)
			}
			k := c.Sealing.KMS
			if k.URL.String() != tt.wantURL || k.ARN.String() != tt.keyID || k.Region != k.ARN.Region {
				t.Fatalf("url %s, arn %s, region %s", k.URL, k.ARN, k.Region)
			}
		})
	}
}

func FuzzParseKeyARN(f *testing.F) {
	for _, s := range []string{operatorKey, chinaKey, govKey, mrkKey, "alias/signer", "arn:aws:kms:us-east-1:111122223333:alias/signer", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := config.ParseKeyARN(s)
		if err != nil {
			if !errors.Is(err, config.ErrKMSKeyID) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if a.String() != s {
			t.Fatalf("accepted %q as %q", s, a)
		}
	})
}
