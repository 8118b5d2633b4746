#! expect: Counting mailboxes...
#! expect: There are 4 mailboxes
#! expect: Done
Write-Host "Counting mailboxes..." -ForegroundColor Yellow
$count = (Get-Mailbox -ResultSize Unlimited).Count
Write-Host "There are $count mailboxes"
Write-Output "Done"
