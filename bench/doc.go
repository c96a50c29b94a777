// Package bench measures planflag: a synthetic UK population of plan
// holders with households, twins, maiden names and moves; a caller-error
// model that turns true details into what a caller says; the FEBRL 4
// record-linkage set as a second, independent data set; the accuracy
// evaluation against an exact-match baseline; and the estimation of the
// matcher's m and u probabilities.
//
// The caller-error model knows nothing of the matcher's internals: it uses
// only the public data types. The service never imports this package.
package bench
