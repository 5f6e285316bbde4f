package main

import (
	"errors"

	"github.com/vonsung/vpay-go"
)

func asError(err error, target **vpay.Error) bool { return errors.As(err, target) }
