// Package alert is everything that faces call-handling systems: the lookup
// API's request and response contract (DESIGN.md), and — as the service
// grows — client authentication and scopes, rate limits, audit events and
// push alerts. It holds no matching logic: it reads requests, asks the
// matcher, and writes answers.
package alert
