package service

import (
	"strings"
	"time"

	"github.com/nitro-signer/nitro-signer/enclave/config"
)

// policy is config.Policy as sets.
type policy struct {
	domains   map[string]bool
	chains    map[uint64]bool
	contracts map[string]bool
	skew      time.Duration
}

func newPolicy(p *config.Policy) policy {
	out := policy{skew: time.Minute}
	if p == nil {
		return out
	}
	out.skew = p.Skew
	if len(p.SIWEDomains) > 0 {
		out.domains = map[string]bool{}
		for _, d := range p.SIWEDomains {
			out.domains[strings.ToLower(d)] = true
		}
	}
	if len(p.ChainIDs) > 0 {
		out.chains = map[uint64]bool{}
		for _, c := range p.ChainIDs {
			out.chains[c] = true
		}
	}
	if len(p.VerifyingContracts) > 0 {
		out.contracts = map[string]bool{}
		for _, c := range p.VerifyingContracts {
			out.contracts[strings.ToLower(c)] = true
		}
	}
	return out
}

// allowDomain, allowChain and allowContract: an empty list allows all.
func (p policy) allowDomain(d string) bool { return p.domains == nil || p.domains[strings.ToLower(d)] }
func (p policy) allowChain(c uint64) bool  { return p.chains == nil || p.chains[c] }
func (p policy) allowContract(a string) bool {
	return p.contracts == nil || p.contracts[strings.ToLower(a)]
}
