package service

import (
	"github.com/go-jose/go-jose/v4"

	"github.com/nitro-signer/nitro-signer/api"
)

// replyEncrypter is the JWE encrypter (ECDH-ES, A256GCM) to the request's
// reply key, for the methods whose result is a secret of the caller's:
// made before anything secret is derived, so that a missing or unusable
// key is refused first. method and what name the refusal.
func replyEncrypter(r *Request, method, what string) (jose.Encrypter, error) {
	if r.ReplyKey == nil {
		return nil, api.Errorf(api.CodeBadRequest, "%s needs a reply_key to encrypt %s to", method, what)
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.ECDH_ES, Key: r.ReplyKey.Key}, nil)
	if err != nil {
		return nil, api.Errorf(api.CodeBadRequest, "reply_key cannot be encrypted to")
	}
	return enc, nil
}

// sealToReply is plain as a compact JWE under enc; its errors say what
// failed, never what plain holds.
func sealToReply(enc jose.Encrypter, plain []byte, what string) (string, error) {
	jwe, err := enc.Encrypt(plain)
	if err != nil {
		return "", api.Errorf(api.CodeInternal, "%s could not be encrypted", what)
	}
	out, err := jwe.CompactSerialize()
	if err != nil {
		return "", api.Errorf(api.CodeInternal, "%s could not be encrypted", what)
	}
	return out, nil
}
