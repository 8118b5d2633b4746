#! source: https://learn.microsoft.com/powershell/module/exchange/get-mailbox
#! expect: shared: Info Desk
#! expect: users: 3
#! expect: both: 4
"shared: " + (Get-Mailbox -RecipientTypeDetails SharedMailbox).Name
"users: " + (Get-Mailbox -RecipientTypeDetails UserMailbox -ResultSize Unlimited | Measure-Object).Count
"both: " + (Get-Mailbox -RecipientTypeDetails SharedMailbox,UserMailbox).Count
