#! file: mailboxes.txt: sean@contoso.com
#! file: mailboxes.txt: Info Desk
#! file: mailboxes.txt: PrimarySmtpAddress
#! file: counts.txt: 4
Get-Mailbox -ResultSize Unlimited | Select-Object DisplayName, PrimarySmtpAddress | Out-File -FilePath .\mailboxes.txt
(Get-Mailbox -ResultSize Unlimited | Measure-Object).Count | Out-File counts.txt -Append
