package main

import (
	"errors"
	"flag"
	"math"
	"strconv"
	"time"
)

// maxSeconds bounds a seconds flag: about 31 years, far below the
// ~292 years a time.Duration holds.
const maxSeconds = 1e9

// secondsFlag is a flag of seconds: a finite number from 0 to maxSeconds.
// flag.Float64 takes NaN, ±Inf, negatives and 1e300, which the conversion
// to a time.Duration turns into nonsense (a negative duration, for 1e300
// too).
type secondsFlag float64

func (s *secondsFlag) String() string {
	if s == nil {
		return "0"
	}
	return strconv.FormatFloat(float64(*s), 'g', -1, 64)
}

func (s *secondsFlag) Set(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return errors.New("not a number of seconds")
	}
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0) || errors.Is(err, strconv.ErrRange):
		return errors.New("not a finite number of seconds")
	case f < 0:
		return errors.New("a negative number of seconds")
	case f > maxSeconds:
		return errors.New("more than 1e9 seconds")
	}
	*s = secondsFlag(f)
	return nil
}

// duration is the value as a time.Duration.
func (s secondsFlag) duration() time.Duration {
	return time.Duration(float64(s) * float64(time.Second))
}

// secondsVar defines a seconds flag.
func secondsVar(fs *flag.FlagSet, p *secondsFlag, name string, value float64, usage string) {
	*p = secondsFlag(value)
	fs.Var(p, name, usage)
}
