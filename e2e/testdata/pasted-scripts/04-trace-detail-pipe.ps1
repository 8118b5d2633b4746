#! source: https://learn.microsoft.com/powershell/module/exchange/get-messagetracedetail
#! expect: Event
#! expect: RECEIVE
#! expect: DELIVER
Get-MessageTrace -SenderAddress sean@contoso.com -StartDate (Get-Date).AddDays(-2) -EndDate (Get-Date) | Get-MessageTraceDetail | Format-Table Date, Event, Detail
