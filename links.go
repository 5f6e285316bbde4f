package vpay

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/vonsung/vpay-go/internal/wire"
)

// LinkType says whether a payment link can be paid once or many times.
type LinkType string

// The documented link types.
const (
	LinkOneOff   LinkType = "one_off"
	LinkMultiple LinkType = "multiple"
)

// LinkRequest describes a payment link to create.
type LinkRequest struct {
	// Name is the page's title (required, at most 100 characters).
	Name string
	// Amount is a fixed amount in RWF (at least MinAmount), or 0 to let the
	// payer choose.
	Amount int64
	// Type defaults to LinkOneOff.
	Type LinkType
	// Description is shown on the link's page.
	Description string
	// RedirectURL is where the payer goes after paying: absolute http(s).
	RedirectURL string
}

// Link is a created payment link.
type Link struct {
	// ID is V-Pay's id of the link (lnk_...), Slug the last part of URL.
	ID, Slug string
	// URL is the link's page, to share with payers; QRCodeURL a QR code
	// image of it.
	URL, QRCodeURL string
	// Amount in whole RWF; 0 when the payer chooses it.
	Amount int64
	// Type says whether the link takes one payment or many.
	Type LinkType
	// Active is false once the link takes no more payments.
	Active bool
}

// CreateLink creates a shareable payment page: POST /payment-links/.
func (c *Client) CreateLink(ctx context.Context, req *LinkRequest) (*Link, error) {
	var cl call
	if c.obs == nil {
		return c.createLink(ctx, req, &cl)
	}
	ctx, op := c.opStart(ctx, Operation{Op: OpCreateLink})
	l, err := c.createLink(ctx, req, &cl)
	c.opEnd(ctx, op, cl.attempts, "", err)
	return l, err
}

func (c *Client) createLink(ctx context.Context, req *LinkRequest, cl *call) (*Link, error) {
	body, err := req.wire()
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, &Error{Message: "cannot encode request", Err: err}
	}
	var w wire.Link
	// Retried like any call: a second link after a lost answer moves no
	// money, unlike a second payment.
	*cl = call{ep: &c.links, body: raw}
	if err := c.do(ctx, cl, nil, &w); err != nil {
		return nil, err
	}
	l := linkFromWire(&w)
	if l.ID == "" {
		return nil, c.annotate(*cl, &Error{Message: "the answer names no link"}, false)
	}
	return l, nil
}

// Validate checks r as CreateLink would, without sending anything.
func (r *LinkRequest) Validate() error {
	_, err := r.wire()
	return err
}

func (r *LinkRequest) wire() (*wire.LinkRequest, error) {
	if r == nil {
		return nil, invalid("LinkRequest", nil, "nil request")
	}
	if strings.TrimSpace(r.Name) == "" {
		return nil, invalid("LinkRequest.Name", nil, "required")
	}
	if err := checkText("LinkRequest.Name", r.Name, 100, nil); err != nil {
		return nil, err
	}
	if r.Amount != 0 && r.Amount < MinAmount {
		return nil, invalid("LinkRequest.Amount", ErrInvalidAmount, "%d RWF is below the minimum of %d RWF (use 0 to let the payer choose)", r.Amount, MinAmount)
	}
	typ := r.Type
	if typ == "" {
		typ = LinkOneOff
	}
	if typ != LinkOneOff && typ != LinkMultiple {
		return nil, invalid("LinkRequest.Type", nil, "%q is not one_off or multiple", string(r.Type))
	}
	if err := checkText("LinkRequest.Description", r.Description, 500, nil); err != nil {
		return nil, err
	}
	if err := checkURL("LinkRequest.RedirectURL", r.RedirectURL); err != nil {
		return nil, err
	}
	return &wire.LinkRequest{Name: r.Name, Amount: r.Amount, Type: string(typ), Description: r.Description, RedirectURL: r.RedirectURL}, nil
}
