package nsm

import (
	"fmt"

	hfnsm "github.com/hf/nsm"
	"github.com/hf/nsm/request"
	"github.com/hf/nsm/response"

	"github.com/nitro-signer/nitro-signer/internal/procs"
)

// Device is the NSM at /dev/nsm.
type Device struct {
	session *hfnsm.Session
}

// send makes one NSM request: an ioctl that blocks its thread, so inside
// procs.Blocking (a second P meanwhile, so that it holds back nothing).
func (d *Device) send(req request.Request) (res response.Response, err error) {
	procs.Blocking(func() { res, err = d.session.Send(req) })
	return res, err
}

var _ Module = (*Device)(nil)

// OpenDevice opens /dev/nsm. It fails outside a Nitro enclave.
func OpenDevice() (*Device, error) {
	s, err := hfnsm.OpenDefaultSession()
	if err != nil {
		return nil, fmt.Errorf("opening /dev/nsm: %w", err)
	}
	return &Device{session: s}, nil
}

// Attest asks the NSM for a document.
func (d *Device) Attest(req AttestRequest) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	res, err := d.send(&request.Attestation{UserData: req.UserData, Nonce: req.Nonce, PublicKey: req.PublicKey})
	if err != nil {
		return nil, fmt.Errorf("nsm attestation: %w", err)
	}
	if res.Error != "" {
		return nil, fmt.Errorf("nsm attestation: %s", res.Error)
	}
	if res.Attestation == nil || len(res.Attestation.Document) == 0 {
		return nil, fmt.Errorf("nsm attestation: empty answer")
	}
	return res.Attestation.Document, nil
}

// Read fills p with random bytes from the NSM.
func (d *Device) Read(p []byte) (int, error) {
	var n int
	var err error
	procs.Blocking(func() { n, err = d.session.Read(p) })
	if err != nil {
		return n, fmt.Errorf("nsm random: %w", err)
	}
	return n, nil
}

// DescribePCR describes one PCR.
func (d *Device) DescribePCR(index int) (PCR, error) {
	if err := ValidatePCRIndex(index); err != nil {
		return PCR{}, err
	}
	res, err := d.send(&request.DescribePCR{Index: uint16(index)})
	if err != nil {
		return PCR{}, fmt.Errorf("nsm describe PCR%d: %w", index, err)
	}
	if res.Error != "" {
		return PCR{}, fmt.Errorf("nsm describe PCR%d: %s", index, res.Error)
	}
	if res.DescribePCR == nil {
		return PCR{}, fmt.Errorf("nsm describe PCR%d: empty answer", index)
	}
	return PCR{Value: res.DescribePCR.Data, Locked: res.DescribePCR.Lock}, nil
}

// Close closes the session.
func (d *Device) Close() error { return d.session.Close() }
