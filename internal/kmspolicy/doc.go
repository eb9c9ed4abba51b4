// Package kmspolicy renders the KMS key policy of a deployment from its
// releases.json, reads a live key policy as `aws kms get-key-policy`
// prints it, and names every way the two differ.
//
// # What the policy says
//
// One statement per allowed release lets the enclave's instance role call
// kms:Decrypt and kms:GenerateDataKey, with conditions that AWS KMS
// evaluates on the attestation document of the request's Recipient:
//
//   - StringEqualsIgnoreCase on kms:RecipientAttestation:PCR<n> for every
//     PCR the release's match names (PCR0, PCR1, PCR2 and, when given,
//     PCR3 and PCR4; PCR8, with or without PCR0, for a signed image), one
//     value each;
//   - StringEquals on kms:EncryptionContext:nitro-signer:signer_id
//     (api.KMSContextKey), so a data key of one deployment is never
//     released under another's name;
//   - DateGreaterThanEquals and DateLessThan on aws:CurrentTime for the
//     release's not_before and not_after, the window the verifier applies
//     (from not_before inclusive, until not_after exclusive).
//
// The statements are separate because within one statement a condition
// key with a list of values matches any one of them: a policy listing
// {PCR0: [A0, B0], PCR1: [A1, B1]} would also release data keys to an
// image measuring A0 and B1, which is no release at all. Every statement
// pins each of its PCRs to one value, so a document matches a statement
// only by matching one release whole — the same rule as
// attestation.Policy.Allowed.
//
// The condition keys exist only in a request that carries a Recipient
// whose document AWS verified; a request without one fails every
// condition and is refused, so no statement ever releases a plaintext data
// key. Documents of debug-mode enclaves carry PCRs of zeros and match no
// release.
//
// One more statement keeps the account able to manage the key: the
// account's root principal (which delegates to the account's IAM policies)
// may describe, tag, enable, disable, rotate, schedule or cancel deletion,
// read and put the key policy, and revoke grants. It is a list of named
// actions, not "kms:*" or a wildcard, because every other action is a way
// to the keyring: kms:Decrypt and kms:GenerateDataKey without a Recipient
// answer in plaintext; kms:Encrypt and kms:ReEncrypt* let whoever holds
// them wrap a data key of their choosing, and so seal a keyring they know
// that the enclave would unseal as its own; kms:CreateGrant can grant any
// of these with no attestation condition (grants carry none). PutKeyPolicy
// stays with the account because KMS refuses a new policy that would lock
// its author out of the next one (the lockout safety check); that is also
// why drift detection (Compare) exists: whoever may put a policy can
// change this one, and `signerctl kms check` says so.
//
// # Reading a live policy
//
// Parse accepts the policy as AWS stores and prints it, strictly: at most
// 32 KB, only the characters AWS allows in a key policy, no duplicate
// keys (a reader that kept the first and one that kept the last would see
// two policies), only the elements of the policy grammar, with AWS's
// normalisations tolerated — a single string or a list for Action,
// Resource, principals and condition values, any key order, any
// whitespace.
package kmspolicy
