package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Errors of the KMS sealing section, for errors.Is.
var (
	// ErrKMSKeyID: sealing.kms.key_id is not a full key ARN.
	ErrKMSKeyID = errors.New("want a full key ARN arn:<partition>:kms:<region>:<account>:key/<id>")
	// ErrKMSEndpoint: the region or the endpoint disagrees with the key
	// ARN's region and partition.
	ErrKMSEndpoint = errors.New("not the KMS of the key's region and partition")
)

// KeyARN is a KMS key's full ARN, parsed.
type KeyARN struct {
	// Partition is aws, aws-cn or aws-us-gov.
	Partition string
	Region    string
	// Account is the 12-digit account that owns the key.
	Account string
	// ID is the key id: a UUID, or mrk-<32 hex> for a multi-Region key.
	ID string
}

// String is the ARN.
func (a KeyARN) String() string {
	return "arn:" + a.Partition + ":kms:" + a.Region + ":" + a.Account + ":key/" + a.ID
}

// DNSSuffix is the partition's domain: amazonaws.com, or amazonaws.com.cn
// in China.
func (a KeyARN) DNSSuffix() string {
	if a.Partition == "aws-cn" {
		return "amazonaws.com.cn"
	}
	return "amazonaws.com"
}

// dualStackSuffix is the partition's domain of dual-stack endpoints.
func (a KeyARN) dualStackSuffix() string {
	if a.Partition == "aws-cn" {
		return "api.amazonwebservices.com.cn"
	}
	return "api.aws"
}

var (
	keyARNPattern = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):kms:([a-z0-9-]{1,32}):([0-9]{12}):key/(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
	bareKeyID     = regexp.MustCompile(`^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
)

// ParseKeyARN accepts only a full KMS key ARN, whose region belongs to its
// partition. The error says why another form is refused, and quotes the
// input only when it is short (a key id is not a secret).
func ParseKeyARN(s string) (KeyARN, error) {
	q := s
	if len(q) > 300 {
		q = q[:300] + "..."
	}
	m := keyARNPattern.FindStringSubmatch(s)
	if m == nil {
		switch {
		case strings.HasPrefix(s, "alias/"):
			return KeyARN{}, fmt.Errorf("%q: %w: an alias name is resolved in the account of the credentials the parent supplies, which may hold the same alias for its own key", q, ErrKMSKeyID)
		case strings.HasPrefix(s, "arn:") && strings.Contains(s, ":alias/"):
			return KeyARN{}, fmt.Errorf("%q: %w: an alias ARN's target can be moved to another key without changing the image", q, ErrKMSKeyID)
		case bareKeyID.MatchString(s):
			return KeyARN{}, fmt.Errorf("%q: %w: a bare key id is resolved in the account of the credentials the parent supplies", q, ErrKMSKeyID)
		}
		return KeyARN{}, fmt.Errorf("%q: %w", q, ErrKMSKeyID)
	}
	a := KeyARN{Partition: m[1], Region: m[2], Account: m[3], ID: m[4]}
	if !regionPattern.MatchString(a.Region) || partitionOf(a.Region) != a.Partition {
		return KeyARN{}, fmt.Errorf("%q: %w: region %q is not in partition %s", q, ErrKMSKeyID, a.Region, a.Partition)
	}
	return a, nil
}

// partitionOf is the partition a region belongs to.
func partitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// kmsEndpoint checks the endpoint against the key: empty, it is KMS's
// public endpoint in the key's region; an AWS host must be KMS's in the
// key's region and partition.
func kmsEndpoint(endpoint string, arn KeyARN) (*url.URL, error) {
	if endpoint == "" {
		endpoint = "https://kms." + arn.Region + "." + arn.DNSSuffix()
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" ||
		u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return nil, fmt.Errorf("sealing.kms.endpoint %q: want https://host[:port]", endpoint)
	}
	host := strings.ToLower(u.Hostname())
	if host != u.Hostname() {
		return nil, fmt.Errorf("sealing.kms.endpoint %q: write the host in lower case", endpoint)
	}
	if isAWSHost(host) && !isKMSHost(host, arn) {
		return nil, fmt.Errorf("sealing.kms.endpoint %q: %w: the key %s is served by kms.%s.%s",
			endpoint, ErrKMSEndpoint, arn, arn.Region, arn.DNSSuffix())
	}
	if u.Port() == "" {
		u.Host += ":443"
	}
	u.Path = ""
	return u, nil
}

func isAWSHost(host string) bool {
	host = strings.TrimSuffix(host, ".")
	for _, d := range []string{"amazonaws.com", "amazonaws.com.cn", "api.aws", "api.amazonwebservices.com.cn"} {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

var vpceLabel = regexp.MustCompile(`^vpce-[a-z0-9-]{1,63}$`)

// isKMSHost reports whether host is KMS's in the key's region and
// partition: kms.<region>.<suffix>, kms-fips.<region>.<suffix> (or their
// dual-stack names), or an interface VPC endpoint's
// vpce-<id>.kms.<region>.vpce.<suffix>.
func isKMSHost(host string, arn KeyARN) bool {
	for _, suffix := range []string{"." + arn.Region + "." + arn.DNSSuffix(), "." + arn.Region + "." + arn.dualStackSuffix()} {
		if host == "kms"+suffix || host == "kms-fips"+suffix {
			return true
		}
	}
	rest, ok := strings.CutSuffix(host, ".kms."+arn.Region+".vpce."+arn.DNSSuffix())
	return ok && vpceLabel.MatchString(rest)
}
