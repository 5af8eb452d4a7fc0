package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slipway-dev/slipway/build"
	"github.com/slipway-dev/slipway/store"
)

// retentionRows is how many rule rows the policy form offers.
const retentionRows = 4

// retentionDecision is one tag of a dry run's answer.
type retentionDecision struct {
	Tag     string    `json:"tag"`
	Digest  string    `json:"digest"`
	Created time.Time `json:"created"`
	Reason  string    `json:"reason"`
}

// retentionPlan is the API's dry run answer.
type retentionPlan struct {
	Delete []retentionDecision `json:"delete"`
	Keep   []retentionDecision `json:"keep"`
}

type retentionData struct {
	NS, Repo string
	Access   access
	// Saved says the repository has a policy; Schedule is the id of its Temporal Schedule.
	Saved    bool
	Schedule string
	Every    string
	Rows     []build.RetentionRule
	Error    string
	Notice   string
	Plan     *retentionPlan
}

// retentionPage is the repository's retention policy: readers see it, writers edit it, try it
// (dry run) and turn it off.
func (cn *Console) retentionPage(c *gin.Context) {
	cn.showRetention(c, http.StatusOK, retentionData{})
}

func (cn *Console) showRetention(c *gin.Context, code int, d retentionData) {
	ns, repo := c.Param("ns"), c.Param("repo")
	acc, ok := cn.requireRole(c, ns, store.RoleRead)
	if !ok {
		return
	}
	d.NS, d.Repo, d.Access = ns, repo, acc
	var p struct {
		build.RetentionPolicy
		Schedule string `json:"schedule"`
	}
	err := cn.call(c, http.MethodGet, "/namespaces/"+esc(ns)+"/repositories/"+esc(repo)+"/retention", nil, nil, &p)
	var ae *apiError
	switch {
	case err == nil:
		d.Saved, d.Schedule = true, p.Schedule
		if d.Rows == nil {
			d.Rows, d.Every = p.Rules, p.Every
		}
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		if !strings.Contains(ae.Message, "retention policy") {
			cn.fail(c, err) // the repository itself is missing
			return
		}
	default:
		cn.fail(c, err)
		return
	}
	for len(d.Rows) < retentionRows {
		d.Rows = append(d.Rows, build.RetentionRule{})
	}
	if d.Every == "" {
		d.Every = build.DefaultRetentionEvery.String()
	}
	cn.render(c, code, "retention", page{Title: "tab.retention", Crumbs: repoCrumbs(ns, repo), Tab: "retention", Data: d})
}

// policyForm reads the form's rule rows (a row without a pattern is unused) and period.
func policyForm(c *gin.Context) (build.RetentionPolicy, []build.RetentionRule, error) {
	p := build.RetentionPolicy{Every: strings.TrimSpace(c.PostForm("every"))}
	patterns, lasts, youngs := c.PostFormArray("tag_pattern"), c.PostFormArray("keep_last"), c.PostFormArray("keep_younger_than")
	var rows []build.RetentionRule
	for i, pat := range patterns {
		r := build.RetentionRule{TagPattern: strings.TrimSpace(pat)}
		if i < len(lasts) && strings.TrimSpace(lasts[i]) != "" {
			n, err := strconv.Atoi(strings.TrimSpace(lasts[i]))
			if err != nil {
				return p, rows, errors.New("keep_last: " + strconv.Quote(lasts[i]) + " is not a number")
			}
			r.KeepLast = n
		}
		if i < len(youngs) {
			r.KeepYoungerThan = strings.TrimSpace(youngs[i])
		}
		rows = append(rows, r)
		if r.TagPattern != "" {
			p.Rules = append(p.Rules, r)
		}
	}
	return p, rows, nil
}

// saveRetention saves the form's policy, which (re)writes its Schedule.
func (cn *Console) saveRetention(c *gin.Context) {
	p, rows, err := policyForm(c)
	if err == nil {
		err = cn.call(c, http.MethodPut, cn.retentionPath(c), nil, p, nil)
	}
	cn.afterRetention(c, err, retentionData{Rows: rows, Every: p.Every}, "retention.saved")
}

// dryRunRetention shows what the form's policy would delete now, without saving it.
func (cn *Console) dryRunRetention(c *gin.Context) {
	p, rows, err := policyForm(c)
	var plan retentionPlan
	if err == nil {
		err = cn.call(c, http.MethodPost, cn.retentionPath(c)+"/dry-run", nil, p, &plan)
	}
	d := retentionData{Rows: rows, Every: p.Every}
	if err == nil {
		d.Plan = &plan
	}
	cn.afterRetention(c, err, d, "")
}

// removeRetention turns retention off: the policy and its Schedule go.
func (cn *Console) removeRetention(c *gin.Context) {
	cn.afterRetention(c, cn.call(c, http.MethodDelete, cn.retentionPath(c), nil, nil, nil), retentionData{}, "retention.removed")
}

func (cn *Console) retentionPath(c *gin.Context) string {
	return "/namespaces/" + esc(c.Param("ns")) + "/repositories/" + esc(c.Param("repo")) + "/retention"
}

// afterRetention shows the page again with the outcome: the API's message for what a person
// can correct, the error page for the rest.
func (cn *Console) afterRetention(c *gin.Context, err error, d retentionData, notice string) {
	var ae *apiError
	switch {
	case err == nil:
		if notice != "" {
			d.Notice = cn.lang(c).T(notice)
			if notice == "retention.removed" {
				d.Rows, d.Every = nil, ""
			}
		}
		cn.showRetention(c, http.StatusOK, d)
	case errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusBadGateway):
		d.Error = ae.Message
		cn.showRetention(c, ae.Status, d)
	case !errors.As(err, &ae):
		d.Error = err.Error()
		cn.showRetention(c, http.StatusBadRequest, d)
	default:
		cn.fail(c, err)
	}
}
