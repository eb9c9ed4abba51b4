package config_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/config"
)

const (
	stsRoleARN  = "arn:aws:iam::123456789012:role/signer-actor-storage"
	stsAudience = "signer-sts-credentials"
)

// stsPolicy is a session policy template that confines to the actor's prefix.
var stsPolicy = map[string]any{
	"Version": "2012-10-17",
	"Statement": []any{map[string]any{
		"Effect": "Allow", "Action": []string{"s3:GetObject", "s3:PutObject"},
		"Resource": "arn:aws:s3:::user-data/actors/{{actor_omni}}/*",
	}},
}

// withSTS is the development configuration with the worker allowed
// v1/sts-credentials and the sts member s (removed when nil).
func withSTS(t *testing.T, s any) []byte {
	t.Helper()
	return edit(t, devConfig(t), func(m map[string]any) {
		roles := m["roles"].(map[string]any)
		roles["worker"] = append(roles["worker"].([]any), "v1/sts-credentials")
		if s == nil {
			delete(m, "sts")
			return
		}
		m["sts"] = s
	})
}

func stsMember(t *testing.T, mutate func(s, role map[string]any)) map[string]any {
	role := map[string]any{"arn": stsRoleARN, "callers": []string{"worker"}, "session_policy": stsPolicy}
	s := map[string]any{"endpoint": "https://sts.eu-west-1.amazonaws.com", "ca_pem": callerCA(t, devConfig(t)), "audience": stsAudience,
		"roles": []any{role}}
	mutate(s, role)
	return s
}

func TestParseSTS(t *testing.T) {
	c, err := config.Parse(withSTS(t, stsMember(t, func(map[string]any, map[string]any) {})))
	if err != nil {
		t.Fatal(err)
	}
	s := c.STS
	if s.URL.String() != "https://sts.eu-west-1.amazonaws.com:443" || s.Region != "eu-west-1" || s.Audience != stsAudience ||
		s.TokenTTL != 300 || s.Wait != 5*time.Second || len(s.Roles) != 1 {
		t.Fatalf("defaults: %+v", s)
	}
	r := s.Role(stsRoleARN)
	if r == nil || r.MaxTTL != 3600 || !r.AllowsCaller("worker") || r.AllowsCaller("broker") || s.Role(stsRoleARN+"x") != nil ||
		s.Role(strings.ToUpper(stsRoleARN)) != nil {
		t.Fatalf("role lookup: %+v", r)
	}
	actor := strings.Repeat("0a", 32)
	p, err := r.SessionPolicyFor(actor)
	if err != nil || !strings.Contains(p, "arn:aws:s3:::user-data/actors/"+actor+"/*") || strings.Contains(p, "{{") || strings.ContainsAny(p, " \n") {
		t.Fatalf("rendered policy %s, %v", p, err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(p), &doc); err != nil {
		t.Fatalf("rendered policy is not JSON: %v", err)
	}
	for _, bad := range []string{strings.Repeat("0A", 32), actor[:63], actor + "0", `0a"}],"Resource":"*","x":"` + actor[:30], strings.Repeat("g", 64)} {
		if _, err := r.SessionPolicyFor(bad); err == nil {
			t.Errorf("SessionPolicyFor(%q) rendered", bad)
		}
	}
	// Policies that confine and that an operator needs: a Condition on
	// the listing prefix, a Deny, a named shared key, a single statement.
	for name, p := range map[string]string{
		"condition": `{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::b/actors/{{actor_omni}}/*"},
			{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","Condition":{"StringLike":{"s3:prefix":["actors/{{actor_omni}}/*"]}}}]}`,
		"deny_and_named_key": `{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/{{actor_omni}}/*"},
			{"Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:kms:eu-west-1:123456789012:key/0b0c7c64-8d44-4d6c-9e2b-6a2b4c9f0e11"},
			{"Effect":"Deny","NotAction":"s3:GetObject","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`,
		"single_statement": `{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/{{actor_omni}}/*"}}`,
	} {
		if _, err := config.Parse(withSTS(t, stsMember(t, func(_, r map[string]any) { r["session_policy"] = json.RawMessage(p) }))); err != nil {
			t.Errorf("%s policy refused: %v", name, err)
		}
	}
	if c, err := config.Parse(withSTS(t, nil)); err != nil || c.STS != nil {
		t.Fatalf("absent sts: %v", err)
	}
	for name, host := range map[string]string{
		"global": "https://sts.amazonaws.com", "fips": "https://sts-fips.us-east-2.amazonaws.com",
		"china": "https://sts.cn-north-1.amazonaws.com.cn", "dualstack": "https://sts.eu-west-1.api.aws",
		"vpce": "https://vpce-0123abcd-xyz.sts.eu-west-1.vpce.amazonaws.com", "private": "https://sts.internal.example:8443",
	} {
		if _, err := config.Parse(withSTS(t, stsMember(t, func(s, _ map[string]any) { s["endpoint"] = host }))); err != nil {
			t.Errorf("%s endpoint %s: %v", name, host, err)
		}
	}
}

func TestParseSTSRefuses(t *testing.T) {
	long := map[string]any{"Statement": []any{map[string]any{"Resource": "arn:aws:s3:::b/{{actor_omni}}/" + strings.Repeat("x", 2000)}}}
	for name, c := range map[string]struct {
		mutate func(s, role map[string]any)
		want   error
	}{
		"bad_endpoint_http":              {func(s, _ map[string]any) { s["endpoint"] = "http://sts.eu-west-1.amazonaws.com" }, nil},
		"bad_endpoint_path":              {func(s, _ map[string]any) { s["endpoint"] = "https://sts.example/x" }, nil},
		"bad_endpoint_query":             {func(s, _ map[string]any) { s["endpoint"] = "https://sts.example?a=b" }, nil},
		"bad_endpoint_upper_case":        {func(s, _ map[string]any) { s["endpoint"] = "https://STS.example" }, nil},
		"bad_endpoint_port_zero":         {func(s, _ map[string]any) { s["endpoint"] = "https://sts.example:0" }, nil},
		"bad_endpoint_port_too_big":      {func(s, _ map[string]any) { s["endpoint"] = "https://sts.example:99999" }, nil},
		"bad_endpoint_port_leading_0":    {func(s, _ map[string]any) { s["endpoint"] = "https://sts.example:0443" }, nil},
		"bad_endpoint_empty":             {func(s, _ map[string]any) { s["endpoint"] = "" }, nil},
		"bad_endpoint_userinfo":          {func(s, _ map[string]any) { s["endpoint"] = "https://u:p@sts.example" }, nil},
		"bad_endpoint_aws_not_sts":       {func(s, _ map[string]any) { s["endpoint"] = "https://s3.eu-west-1.amazonaws.com" }, config.ErrSTSEndpoint},
		"bad_endpoint_aws_lookalike":     {func(s, _ map[string]any) { s["endpoint"] = "https://sts.eu-west-1.amazonaws.com.evil.amazonaws.com" }, config.ErrSTSEndpoint},
		"bad_endpoint_china_suffix":      {func(s, _ map[string]any) { s["endpoint"] = "https://sts.cn-north-1.amazonaws.com" }, config.ErrSTSEndpoint},
		"bad_endpoint_vpce_no_region":    {func(s, _ map[string]any) { s["endpoint"] = "https://vpce-1.sts.vpce.amazonaws.com" }, config.ErrSTSEndpoint},
		"bad_region":                     {func(s, _ map[string]any) { s["region"] = "Moon" }, nil},
		"bad_no_ca":                      {func(s, _ map[string]any) { s["ca_pem"] = "" }, nil},
		"bad_audience_space":             {func(s, _ map[string]any) { s["audience"] = "a b" }, nil},
		"bad_token_ttl_short":            {func(s, _ map[string]any) { s["token_ttl"] = 59 }, nil},
		"bad_token_ttl_long":             {func(s, _ map[string]any) { s["token_ttl"] = 3601 }, nil},
		"bad_timeout_short":              {func(s, _ map[string]any) { s["timeout"] = "999ms" }, nil},
		"bad_timeout_long":               {func(s, _ map[string]any) { s["timeout"] = "61s" }, nil},
		"bad_timeout_unparsed":           {func(s, _ map[string]any) { s["timeout"] = "10" }, nil},
		"bad_no_roles":                   {func(s, _ map[string]any) { s["roles"] = []any{} }, nil},
		"bad_role_twice":                 {func(s, r map[string]any) { s["roles"] = []any{r, r} }, nil},
		"bad_role_arn_user":              {func(_, r map[string]any) { r["arn"] = "arn:aws:iam::123456789012:user/alice" }, config.ErrRoleARN},
		"bad_role_arn_no_account":        {func(_, r map[string]any) { r["arn"] = "arn:aws:iam:::role/x" }, config.ErrRoleARN},
		"bad_role_arn_wildcard":          {func(_, r map[string]any) { r["arn"] = "arn:aws:iam::123456789012:role/*" }, config.ErrRoleARN},
		"bad_role_arn_partition":         {func(_, r map[string]any) { r["arn"] = "arn:evil:iam::123456789012:role/x" }, config.ErrRoleARN},
		"bad_role_no_callers":            {func(_, r map[string]any) { r["callers"] = []string{} }, nil},
		"bad_role_caller_unknown":        {func(_, r map[string]any) { r["callers"] = []string{"nobody"} }, nil},
		"bad_role_caller_without_method": {func(_, r map[string]any) { r["callers"] = []string{"broker"} }, nil},
		"bad_role_ttl_below_sts":         {func(_, r map[string]any) { r["max_ttl"] = 899 }, nil},
		"bad_role_ttl_above_sts":         {func(_, r map[string]any) { r["max_ttl"] = 43201 }, nil},
		"bad_policy_absent":              {func(_, r map[string]any) { delete(r, "session_policy") }, config.ErrSessionPolicy},
		"bad_policy_null":                {func(_, r map[string]any) { r["session_policy"] = nil }, config.ErrSessionPolicy},
		"bad_policy_not_object":          {func(_, r map[string]any) { r["session_policy"] = "{{actor_omni}}" }, config.ErrSessionPolicy},
		"bad_policy_no_statement":        {func(_, r map[string]any) { r["session_policy"] = map[string]any{"Version": "{{actor_omni}}"} }, config.ErrSessionPolicy},
		"bad_policy_not_naming_actor": {func(_, r map[string]any) {
			r["session_policy"] = map[string]any{"Statement": []any{map[string]any{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}}
		}, config.ErrSessionPolicy},
		"bad_policy_other_placeholder": {func(_, r map[string]any) {
			r["session_policy"] = map[string]any{"Statement": "{{actor_omni}}/{{role}}"}
		}, config.ErrSessionPolicy},
		"bad_policy_too_long": {func(_, r map[string]any) { r["session_policy"] = long }, config.ErrSessionPolicy},
		"bad_policy_placeholder_only_in_a_sid": {func(_, r map[string]any) {
			r["session_policy"] = json.RawMessage(`{"Statement":[{"Sid":"{{actor_omni}}","Effect":"Allow","Action":"s3:*","Resource":"*"}]}`)
		}, config.ErrSessionPolicy},
		"bad_policy_placeholder_in_a_key": {func(_, r map[string]any) {
			r["session_policy"] = json.RawMessage(`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/x","{{actor_omni}}":1}]}`)
		}, config.ErrSessionPolicy},
		"bad_policy_statement_null": {func(_, r map[string]any) {
			r["session_policy"] = json.RawMessage(`{"Statement":null,"x":"{{actor_omni}}"}`)
		}, config.ErrSessionPolicy},
		"bad_policy_statement_empty": {func(_, r map[string]any) {
			r["session_policy"] = json.RawMessage(`{"Statement":[],"x":"{{actor_omni}}"}`)
		}, config.ErrSessionPolicy},
		"bad_policy_statement_not_object": {func(_, r map[string]any) { r["session_policy"] = json.RawMessage(`{"Statement":["{{actor_omni}}"]}`) }, config.ErrSessionPolicy},
		"bad_policy_escaped_placeholder": {func(_, r map[string]any) {
			r["session_policy"] = json.RawMessage(`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/\u007b\u007bactor_omni\u007d\u007d/*"}]}`)
		}, config.ErrSessionPolicy},
		"bad_policy_escaped_beside_a_real_one": {func(_, r map[string]any) {
			r["session_policy"] = json.RawMessage(`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::b/{{actor_omni}}/*","arn:aws:s3:::b/\u007b\u007bactor_omni}}"]}]}`)
		}, config.ErrSessionPolicy},
		"bad_policy_allow_wildcard_beside_the_actor": {func(_, r map[string]any) {
			r["session_policy"] = json.RawMessage(`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::b/{{actor_omni}}/*","arn:aws:s3:::b/*"]}]}`)
		}, config.ErrSessionPolicy},
		"bad_policy_allow_not_resource": {func(_, r map[string]any) {
			r["session_policy"] = json.RawMessage(`{"Statement":[{"Effect":"Allow","Action":"s3:*","NotResource":"arn:aws:s3:::b/{{actor_omni}}/*"}]}`)
		}, config.ErrSessionPolicy},
		"bad_policy_allow_not_action": {func(_, r map[string]any) {
			r["session_policy"] = json.RawMessage(`{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"arn:aws:s3:::b/{{actor_omni}}/*"}]}`)
		}, config.ErrSessionPolicy},
		"bad_policy_allow_without_resource": {func(_, r map[string]any) {
			r["session_policy"] = json.RawMessage(`{"Statement":[{"Effect":"Allow","Action":"s3:*","Condition":{"StringLike":{"s3:prefix":"{{actor_omni}}/*"}}}]}`)
		}, config.ErrSessionPolicy},
		"bad_policy_effect_missing": {func(_, r map[string]any) {
			r["session_policy"] = json.RawMessage(`{"Statement":[{"Action":"s3:*","Resource":"arn:aws:s3:::b/{{actor_omni}}/*"}]}`)
		}, config.ErrSessionPolicy},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := config.Parse(withSTS(t, stsMember(t, c.mutate)))
			if err == nil {
				t.Fatal("accepted")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("%v, want %v", err, c.want)
			}
		})
	}
	t.Run("bad_no_oidc", func(t *testing.T) {
		b := edit(t, withSTS(t, stsMember(t, func(map[string]any, map[string]any) {})), func(m map[string]any) { delete(m, "oidc") })
		if _, err := config.Parse(b); err == nil || !strings.Contains(err.Error(), "oidc") {
			t.Fatalf("sts without oidc: %v", err)
		}
	})
}

// FuzzParseSTS fuzzes the sts member inside the development configuration
// (the worker allowed the method). Invariants: no panic; whatever is
// accepted has an https endpoint, roots, 1..64 roles of full role ARNs
// with callers, STS's ttl bounds, and policies that render to JSON of at
// most 2048 bytes naming the actor and nothing else spliced.
func FuzzParseSTS(f *testing.F) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(devConfig(f), &m); err != nil {
		f.Fatal(err)
	}
	var roles map[string][]string
	if err := json.Unmarshal(m["roles"], &roles); err != nil {
		f.Fatal(err)
	}
	roles["worker"] = append(roles["worker"], "v1/sts-credentials")
	m["roles"], _ = json.Marshal(roles)
	var ca string
	if err := json.Unmarshal(m["caller_ca_pem"], &ca); err != nil {
		f.Fatal(err)
	}
	caJSON, _ := json.Marshal(ca)
	seed := `{"endpoint":"https://sts.eu-west-1.amazonaws.com","ca_pem":` + string(caJSON) + `,"audience":"x","roles":[{"arn":"` + stsRoleARN +
		`","callers":["worker"],"session_policy":{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/{{actor_omni}}/*"}]}}]}`
	f.Add([]byte(seed))
	f.Add([]byte(strings.Replace(seed, `"roles"`, `"token_ttl":60,"region":"us-west-2","roles"`, 1)))
	f.Add([]byte(strings.Replace(seed, "{{actor_omni}}", "{{actor_omni}}{{", 1)))
	f.Add([]byte(strings.Replace(seed, `"callers":["worker"]`, `"callers":["worker"],"max_ttl":43200`, 1)))
	f.Add([]byte(`null`))
	actor := strings.Repeat("5c", 32)
	f.Fuzz(func(t *testing.T, member []byte) {
		m2 := map[string]json.RawMessage{}
		for k, v := range m {
			m2[k] = v
		}
		m2["sts"] = member
		b, err := json.Marshal(m2)
		if err != nil {
			return
		}
		c, err := config.Parse(b)
		if err != nil || c.STS == nil {
			return
		}
		s := c.STS
		if s.URL == nil || s.URL.Scheme != "https" || s.URL.Port() == "" || s.URL.Path != "" || s.Roots == nil ||
			s.TokenTTL < 60 || s.TokenTTL > 3600 || s.Audience == "" {
			t.Fatalf("accepted %+v", s)
		}
		if slices.Contains(c.OIDC.Audiences, s.Audience) {
			t.Fatalf("accepted an sts audience that v1/oidc-token mints: %q", s.Audience)
		}
		if len(s.Roles) < 1 || len(s.Roles) > config.MaxSTSRoles {
			t.Fatalf("accepted %d roles", len(s.Roles))
		}
		for _, r := range s.Roles {
			if !strings.HasPrefix(r.ARN, "arn:") || !strings.Contains(r.ARN, ":role/") || len(r.Callers) == 0 ||
				r.MaxTTL < config.STSMinTTL || r.MaxTTL > config.STSMaxTTL || s.Role(r.ARN) == nil {
				t.Fatalf("accepted role %+v", r)
			}
			p, err := r.SessionPolicyFor(actor)
			if err != nil || len(p) > config.MaxSessionPolicy || !strings.Contains(p, actor) || strings.Contains(p, "{{") {
				t.Fatalf("policy %q, %v", p, err)
			}
			var doc map[string]json.RawMessage
			if err := json.Unmarshal([]byte(p), &doc); err != nil || doc["Statement"] == nil {
				t.Fatalf("rendered policy is not a JSON object with a Statement: %q", p)
			}
		}
	})
}
