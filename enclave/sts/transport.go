package sts

import (
	"errors"
	"io"
	"net/http"
)

// errTooLarge: an answer ran past MaxAnswerSize.
var errTooLarge = errors.New("sts: answer over the size limit")

// capped bounds the body of every answer to MaxAnswerSize bytes: reading
// past it fails with errTooLarge (an answer cut short would otherwise read
// as a shorter one).
type capped struct{ next http.RoundTripper }

func (c capped) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{body: resp.Body, left: MaxAnswerSize, tooLarge: resp.ContentLength > MaxAnswerSize}
	return resp, nil
}

type cappedBody struct {
	body     io.ReadCloser
	left     int64
	tooLarge bool
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.tooLarge {
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.body.Read(p)
	if int64(n) > b.left {
		b.tooLarge = true
		return 0, errTooLarge
	}
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.body.Close() }
