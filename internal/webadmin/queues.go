package webadmin

import (
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Exchange admin center: Mail flow > Queues. The delivery queues
// (Get-Queue) with Retry (Retry-Queue), and the queued messages
// (Get-QueueMessage, of one queue with ?queue=) with Remove
// (Remove-QueueMessage), which sends the sender a non-delivery report
// unless the admin chooses not to (-WithNDR $false), as Exchange's
// "Remove (with NDR)" and "Remove (without NDR)".

type queueRow struct {
	Identity, DeliveryType, Status, NextHopDomain, LastError string
	MessageCount                                             string
	NextRetryTime                                            time.Time
}

type queueMessageRow struct {
	Identity, FromAddress, Recipient, Status, Size, Subject, Queue, LastError string
	Received, NextRetry                                                       time.Time
	RetryCount                                                                string
}

type queuesData struct {
	base
	Queues       []queueRow
	Messages     []queueMessageRow
	Queue        string
	CanRetry     bool
	CanRemove    bool
	MessageError string
}

func (h *Handler) queues(q *request) {
	h.renderQueues(q, http.StatusOK, nil)
}

func (h *Handler) renderQueues(q *request, status int, errs map[string]string) {
	d := queuesData{base: q.page("Queues", eac, navQueues), Queue: q.r.URL.Query().Get("queue"), CanRetry: q.can("Retry-Queue"), CanRemove: q.can("Remove-QueueMessage")}
	if q.r.Method == http.MethodPost {
		d.Queue = q.r.PostForm.Get("queue")
	}
	d.Errors = errs
	objs, err := q.invoke("Get-Queue", nil)
	if err != nil {
		q.fail(err)
		return
	}
	for _, o := range objs {
		r := queueRow{Identity: prop(o, "Identity"), DeliveryType: prop(o, "DeliveryType"), Status: prop(o, "Status"), NextHopDomain: prop(o, "NextHopDomain"),
			LastError: prop(o, "LastError"), MessageCount: prop(o, "MessageCount")}
		r.NextRetryTime = timeProp(o, "NextRetryTime")
		d.Queues = append(d.Queues, r)
	}
	params := map[string]any{}
	if d.Queue != "" {
		params["Queue"] = d.Queue
	}
	msgs, err := q.invoke("Get-QueueMessage", params)
	if err != nil {
		_, e := q.fieldErrors(err)
		d.MessageError = firstOf(e)
	}
	// The page lists at most this many messages: a queue that grew to
	// thousands is worked with Retry-Queue, not one row at a time.
	const maxRows = 500
	for i, o := range msgs {
		if i == maxRows {
			break
		}
		d.Messages = append(d.Messages, queueMessageRow{Identity: prop(o, "Identity"), FromAddress: prop(o, "FromAddress"), Recipient: prop(o, "Recipient"),
			Status: prop(o, "Status"), Size: prop(o, "Size"), Subject: prop(o, "Subject"), Queue: prop(o, "Queue"), LastError: prop(o, "LastError"),
			Received: timeProp(o, "DateReceived"), NextRetry: timeProp(o, "NextRetryTime"), RetryCount: prop(o, "RetryCount")})
	}
	h.render(q.w, q.r, status, "queues", d)
}

// queuesBack is the queues page the admin came from.
func (q *request) queuesBack() string {
	if v := q.r.PostForm.Get("queue"); v != "" {
		return "/exchange/queues?queue=" + url.QueryEscape(v)
	}
	return "/exchange/queues"
}

// queueRetry is a queue's Retry: Retry-Queue.
func (h *Handler) queueRetry(q *request) {
	id := q.r.PostForm.Get("identity")
	if _, err := q.invoke("Retry-Queue", map[string]any{"Identity": id}); err != nil {
		status, errs := q.fieldErrors(err)
		h.renderQueues(q, status, errs)
		return
	}
	q.flash("The queue " + id + " is being retried now.")
	q.redirect(q.queuesBack())
}

// queueMessageRemove is a message's Remove: Remove-QueueMessage, with
// or without a non-delivery report.
func (h *Handler) queueMessageRemove(q *request) {
	f := q.r.PostForm
	id := f.Get("identity")
	withNDR, err := strconv.ParseBool(f.Get("withNDR"))
	if err != nil {
		h.renderQueues(q, http.StatusBadRequest, map[string]string{"WithNDR": "Choose whether the sender gets a non-delivery report."})
		return
	}
	if _, err := q.invoke("Remove-QueueMessage", map[string]any{"Identity": id, "WithNDR": withNDR}); err != nil {
		status, errs := q.fieldErrors(err)
		h.renderQueues(q, status, errs)
		return
	}
	if withNDR {
		q.flash("The message " + id + " was removed; its sender gets a non-delivery report.")
	} else {
		q.flash("The message " + id + " was removed without a non-delivery report.")
	}
	q.redirect(q.queuesBack())
}

// timeProp reads a time property of a cmdlet's output; zero when unset.
func timeProp(o interface{ Get(string) (any, bool) }, name string) time.Time {
	v, _ := o.Get(name)
	t, _ := v.(time.Time)
	return t
}
