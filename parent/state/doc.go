// Package state is the parent's store of sealed keyrings. Store is what
// the host service needs; Dir keeps them in a directory, S3 in a bucket.
//
// The enclave names the sequence of every write, and a store writes it
// only if that sequence is not stored yet: of two replicas writing the same
// sequence exactly one wins, the other is told ErrExists, and nothing is
// ever overwritten. (A write of the very bytes a sequence holds succeeds:
// it is a retry whose first answer was lost, sealed bytes never repeating
// between writers.) Earlier sequences stay, so a write that turns out bad
// (or an object corrupted later) leaves the previous one to fall back to,
// and the bad one stays for inspection. The parent cannot read what it
// stores: it keeps bytes the enclave sealed, and the enclave trusts no
// answer of a store (a lying store is a lying parent).
//
// # The directory
//
// keyring-<seq>.sealed per sequence, seq in 20 decimal digits, written by
// writing a temporary file (.tmp-*), syncing it, hard-linking it to its
// name (a link never replaces an existing file, so of two writers exactly
// one links) and syncing the directory. Other names are ignored.
//
// # S3
//
// --state s3://BUCKET/PREFIX: one object per sequence, at
//
//	PREFIX/keyring-<seq>.sealed
//
// seq in 20 decimal digits, the directory's names: sequence 3 is
// PREFIX/keyring-00000000000000000003.sealed, and S3's ascending listing
// of a general purpose bucket is ascending by sequence. Keys that are not
// exactly of this form (other widths, sequence 0, other suffixes, deeper
// paths) are ignored. A listing whose keys come out of order (a directory
// bucket, which does not sort) is refused rather than trusted.
//
// # Listing
//
// List returns the sequences above a given one, oldest first, a bounded
// number at a time, and says whether more remain: the enclave lists from
// the newest sequence it has examined. (Listed newest first, a bounded
// listing would show only the top of the store, and whoever can write the
// bucket could pile objects at high sequences to hide the lineage below
// them.) S3 lists from the key of that sequence (StartAfter), paging with
// continuation tokens up to 16 pages of 1000 keys; a listing that reaches
// that bound having found sequences returns them and says more remain,
// one that found none is an error rather than an empty store.
//
// Put sends If-None-Match: *, so S3 writes the object only if the key is
// free. S3 answers 412 Precondition Failed when the key is taken: the
// store reads it, and answers ErrExists unless the bytes are this Put's
// own (the SDK retried a request whose answer was lost). S3 answers 409
// ConditionalRequestConflict while a conflicting write of the key is in
// progress: the store tries again, up to 6 times, with jittered backoff
// doubling from 50 ms to 1 s; a retry that then meets 412 is ErrExists as
// above, and one still conflicting after the last try is an error (not
// ErrExists: nobody is known to have won). Get refuses an object over
// MaxBlob. Every request has a deadline (10 s by default), carries the
// expected bucket owner when one is configured (S3 then refuses a bucket
// another account owns), and the SDK's logger is off: no request,
// signature or credential reaches a log, and errors quote S3's code and
// request id, never a credential.
//
// The parent's role needs s3:ListBucket on the bucket (for PREFIX/*;
// without it S3 answers a missing key 403, not 404), s3:GetObject and
// s3:PutObject on PREFIX/*, and nothing else: it never deletes or
// replaces. Credentials and region come from the AWS SDK's default chain
// (environment, shared files, web identity, the instance role through
// IMDS); --s3-endpoint names an S3-compatible server, addressed by path.
package state
