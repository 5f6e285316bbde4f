package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	yaml "github.com/pb33f/go-yaml"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
)

// specServer is the server URL of openapi/vpay.yaml: exchanges are matched
// against the spec as if they went there, whatever VPAY_BASE_URL says.
const specServer = "https://vonsung.rw/api"

// contract is openapi/vpay.yaml, ready to check exchanges against.
type contract struct {
	v        validator.Validator
	webhook  *base.Schema
	readings map[string]string // x-vpay-reading id -> topic
}

// loadContract parses the spec and collects its readings.
func loadContract(spec []byte) (*contract, error) {
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, fmt.Errorf("openapi/vpay.yaml: %w", err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("openapi/vpay.yaml: %w", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, fmt.Errorf("openapi/vpay.yaml: %v", errs[0])
	}
	c := &contract{v: v, readings: map[string]string{}}
	if hook, ok := model.Model.Webhooks.Get("payment"); ok && hook.Post != nil && hook.Post.RequestBody != nil {
		if mt, ok := hook.Post.RequestBody.Content.Get("application/json"); ok && mt.Schema != nil {
			c.webhook = mt.Schema.Schema()
		}
	}
	if c.webhook == nil {
		return nil, fmt.Errorf("openapi/vpay.yaml: no schema for the payment webhook")
	}
	var tree any
	if err := yaml.Unmarshal(spec, &tree); err != nil {
		return nil, fmt.Errorf("openapi/vpay.yaml: %w", err)
	}
	if err := collectReadings(tree, c.readings); err != nil {
		return nil, err
	}
	return c, nil
}

// collectReadings finds every x-vpay-reading in the spec's tree.
func collectReadings(node any, into map[string]string) error {
	switch n := node.(type) {
	case map[string]any:
		for k, v := range n {
			if k == "x-vpay-reading" {
				r, _ := v.(map[string]any)
				id, _ := r["id"].(string)
				topic, _ := r["topic"].(string)
				if id == "" || topic == "" {
					return fmt.Errorf("openapi/vpay.yaml: an x-vpay-reading without id or topic: %v", v)
				}
				if _, dup := into[id]; dup {
					return fmt.Errorf("openapi/vpay.yaml: reading %q appears twice", id)
				}
				into[id] = topic
			}
			if err := collectReadings(v, into); err != nil {
				return err
			}
		}
	case []any:
		for _, v := range n {
			if err := collectReadings(v, into); err != nil {
				return err
			}
		}
	}
	return nil
}

// verdict is what the spec says of one body: problems fail a check,
// unknown fields only warn (the SDK ignores fields it does not read).
type verdict struct {
	problems []string
	unknown  []string
	headers  []string // required headers missing or malformed
}

func (v *verdict) add(o verdict) {
	v.problems = append(v.problems, o.problems...)
	v.unknown = append(v.unknown, o.unknown...)
	v.headers = append(v.headers, o.headers...)
}

// request checks a request the SDK sent.
func (c *contract) request(ex *exchange, base *url.URL) verdict {
	ok, errs := c.v.ValidateHttpRequest(ex.specRequest(base))
	if ok {
		return verdict{}
	}
	return classify(errs, "request")
}

// response checks the answer to ex.
func (c *contract) response(ex *exchange, base *url.URL) verdict {
	if ex.resp == nil {
		return verdict{}
	}
	resp := &http.Response{StatusCode: ex.resp.StatusCode, Header: ex.resp.Header.Clone(),
		Body: io.NopCloser(bytes.NewReader(ex.respBody))}
	ok, errs := c.v.ValidateHttpResponse(ex.specRequest(base), resp)
	if ok {
		return verdict{}
	}
	return classify(errs, "answer")
}

// webhookBody checks a webhook delivery's body.
func (c *contract) webhookBody(body []byte) verdict {
	ok, errs := schema_validation.NewSchemaValidator().ValidateSchemaBytes(c.webhook, body)
	if ok {
		return verdict{}
	}
	return classify(errs, "delivery")
}

// classify sorts the validator's findings: a field the spec does not know
// is a warning, a missing required header belongs to the rate-limit check,
// anything else is a problem that names the field.
func classify(errs []*verrors.ValidationError, what string) verdict {
	var v verdict
	for _, e := range errs {
		if strings.Contains(strings.ToLower(e.ValidationType+" "+e.ValidationSubType), "header") {
			for _, f := range e.SchemaValidationErrors {
				v.headers = append(v.headers, f.Reason)
			}
			if len(e.SchemaValidationErrors) == 0 {
				v.headers = append(v.headers, e.Reason)
			}
			continue
		}
		if len(e.SchemaValidationErrors) == 0 {
			v.problems = append(v.problems, fmt.Sprintf("%s: %s", what, e.Reason))
			continue
		}
		var unknown []string
		var rest []*verrors.SchemaValidationFailure
		for _, f := range e.SchemaValidationErrors {
			if names := unknownNames(f); names != nil {
				unknown = append(unknown, names...)
			} else {
				rest = append(rest, f)
			}
		}
		if len(rest) == 0 {
			// Every other keyword held: these fields are the only ones the
			// spec does not know.
			v.unknown = append(v.unknown, unknown...)
			continue
		}
		// When a body fits none of a schema's alternatives, every field is
		// "unevaluated" and every alternative complains: report the
		// alternative that came closest, not the noise.
		for _, f := range closestAlternative(rest) {
			field := strings.TrimPrefix(f.FieldPath, "$.")
			if field == "" || field == "$" {
				v.problems = append(v.problems, fmt.Sprintf("%s: %s", what, f.Reason))
				continue
			}
			v.problems = append(v.problems, fmt.Sprintf("%s field %s: %s", what, field, f.Reason))
		}
	}
	sort.Strings(v.unknown)
	v.unknown = slices.Compact(v.unknown)
	v.problems = slices.Compact(v.problems)
	return v
}

// closestAlternative keeps, of failures under an anyOf, those of the
// alternative with the fewest (the first on a tie), and every failure
// outside it.
func closestAlternative(fs []*verrors.SchemaValidationFailure) []*verrors.SchemaValidationFailure {
	byAlt := map[string][]*verrors.SchemaValidationFailure{}
	var alts []string
	var out []*verrors.SchemaValidationFailure
	for _, f := range fs {
		kw := f.KeywordLocation
		i := strings.Index(kw, "/anyOf/")
		if i < 0 {
			out = append(out, f)
			continue
		}
		rest := kw[i+len("/anyOf/"):]
		alt := kw[:i+len("/anyOf/")] + rest[:max(strings.IndexByte(rest, '/'), 0)]
		if _, seen := byAlt[alt]; !seen {
			alts = append(alts, alt)
		}
		byAlt[alt] = append(byAlt[alt], f)
	}
	best := ""
	for _, a := range alts {
		if best == "" || len(byAlt[a]) < len(byAlt[best]) {
			best = a
		}
	}
	return append(out, byAlt[best]...)
}

// unknownNames returns the properties a failure says are not allowed
// (additionalProperties or unevaluatedProperties), or nil.
func unknownNames(f *verrors.SchemaValidationFailure) []string {
	kw := f.KeywordLocation
	if !strings.HasSuffix(kw, "/additionalProperties") && !strings.HasSuffix(kw, "/unevaluatedProperties") {
		return nil
	}
	// "additional properties 'fee', 'x' not allowed" quotes the names; an
	// unevaluated property is named by the failure's field.
	var names []string
	parts := strings.Split(f.Reason, "'")
	for i := 1; i < len(parts); i += 2 {
		names = append(names, parts[i])
	}
	if len(names) == 0 {
		names = []string{cmp.Or(strings.TrimPrefix(f.FieldPath, "$."), f.FieldName, f.Reason)}
	}
	return names
}
