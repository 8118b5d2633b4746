#! source: https://learn.microsoft.com/powershell/module/exchange/get-messagetrace
#! expect: SenderAddress
#! expect: sean@contoso.com
#! expect: chris@contoso.com
#! expect: Delivered
Get-MessageTrace -StartDate (Get-Date).AddDays(-2) -EndDate (Get-Date) | Format-Table SenderAddress, RecipientAddress, Subject, Status
