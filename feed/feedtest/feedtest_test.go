package feedtest

import "testing"

func TestCarries(t *testing.T) {
	for _, c := range []struct {
		text, value string
		want        bool
	}{
		{`"birth_date":"1940-01-02"`, "1940", true},
		{`"time":"2026-11-30T22:58:34.019405801Z"`, "1940", false},
		{`1940`, "1940", true},
		{`a 19401 and 1940`, "1940", true},
		{`"birth_date":"02/01/1940"`, "1940", true},
		{`go_gc_duration_seconds{quantile="0.5"} 2.1940e-05`, "1940", false},
		{`"request_id":"3fa1940c2e1b-7"`, "1940", false},
		{`"given_name":"Anne"`, "Ann", true},
		{`"given_name":"Bob"`, "Ann", false},
	} {
		if got := Carries(c.text, c.value); got != c.want {
			t.Errorf("Carries(%q, %q) = %v", c.text, c.value, got)
		}
	}
}
